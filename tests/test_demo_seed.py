"""The demo is reproducible (issue 12 item 8): a seed fixes the park day, so the figures the README
shows under "A park day" are what a run prints today, line for line; only the time taken (its own
line) and the output folder differ. ``--seed`` plays another day."""

from pathlib import Path

from host_sim.demo import DEFAULT_SEED, run_demo
from tools.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## A park day"
README_OUT = "var/demo"  # the demo's default --out, as the README's run printed it


def figures(printed: str, out: Path) -> list[str]:
    """What a seed fixes: every line but the time taken, with the output folder as the README's."""
    return [line.replace(str(out), README_OUT) for line in printed.splitlines()
            if not line.strip().startswith("(took ")]


def readme_figures() -> list[str]:
    text = README.read_text()
    section = text[text.index(SECTION):]
    block = section[section.index("```\n") + len("```\n"):]
    return [line for line in block[:block.index("```")].splitlines() if not line.strip().startswith("(took ")]


def test_the_readmes_park_day_is_what_the_seeded_demo_prints(tmp_path, capsys):
    assert build_parser().parse_args(["demo"]).seed == DEFAULT_SEED  # the README's run used the default
    out = tmp_path / "demo"
    assert run_demo(out, broker="mosquitto") == 0
    printed = figures(capsys.readouterr().out, out)
    assert printed[0].startswith(f"fieldpos demo: 60 visitors, 6 terminals, seed {DEFAULT_SEED},")
    assert printed == readme_figures()


def test_another_seed_plays_another_day(tmp_path, capsys):
    # (One seed, the same day: the test above compares a run with the README's, made by another run.)
    days = {}
    for seed in (1, 2):
        out = tmp_path / f"seed{seed}"
        assert run_demo(out, visitors=4, seed=seed, broker="mosquitto") == 0
        days[seed] = figures(capsys.readouterr().out, out)
    assert days[1][0].startswith("fieldpos demo: 4 visitors, 6 terminals, seed 1,")
    assert days[1][1:] != days[2][1:]
    for day in days.values():
        # The rental hut's day is the same whatever the seed: every kind of deposit, hand-out and return
        # happened, and the pool the demo printed is the open holds (ledger verify checks it too).
        (rentals,) = [line.strip() for line in day if line.strip().startswith("rentals (")]
        assert "6 deposits (2 paid online, 3 at the desk, 1 from a park card)" in rentals
        assert "7 hand-outs (2 offline: one voucher at both desks, 1 flagged at sync)" in rentals
        assert rentals.endswith("5 returns (1 damaged, 1 late, 1 lost, 2 on time)")
        (pool,) = [line.strip() for line in day if line.strip().startswith("deposit pool:")]
        assert pool.startswith("deposit pool: 1 held 50.00;") and "open claims 1 575.00" in pool
        assert pool.endswith("pool 50.00 = open holds 50.00: verified")
        assert any("2 refunds to the original payment, 235.00" in line for line in day)
        assert any("books balance" in line for line in day)
