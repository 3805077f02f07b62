"""Reports read from the books: what admins, finance and station supervisors look at."""
