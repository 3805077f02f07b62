"""The demo's account balances say what each balance means to the park: a renter's open claim is
money owed to the park, not money it owes, though the ledger books both as a debit (negative)."""

from host_sim.demo import OTHER_ACCOUNTS, account_lines

BOOKED = [("balance_adjustment", -1200), ("card_fee", 3000), ("channel:cash", -172250), ("claim:D4", -57500),
          ("contractor:C-HORSE", 278800), ("income:rental_damage", 83000), ("offline_loss", -2000),
          ("revenue:bbq", 212450)]


def test_each_balance_is_listed_under_what_it_means_and_shown_the_way_it_is_meant():
    lines = [" ".join(line.split()) for line in account_lines(BOOKED)]
    assert lines == ["money the park holds, by how it came in:", "channel:cash 1,722.50",
                     "owed to the park by renters (open claims):", "claim:D4 575.00",
                     "earned by the park (sales, card and rental fees):", "card_fee 30.00",
                     "income:rental_damage 830.00", "revenue:bbq 2,124.50",
                     "owed by the park to its contractors (their share):", "contractor:C-HORSE 2,788.00",
                     "borne by the park (offline losses, bonus given):", "offline_loss 20.00",
                     f"{OTHER_ACCOUNTS}:", "balance_adjustment -12.00"]


def test_a_group_with_no_account_has_no_heading():
    lines = [" ".join(line.split()) for line in account_lines([("revenue:bbq", 100)])]
    assert lines == ["earned by the park (sales, card and rental fees):", "revenue:bbq 1.00"]
