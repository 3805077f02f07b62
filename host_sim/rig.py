"""A whole small park on one machine: ledger home, broker, ledger service and terminals.

Used by the demo, the benches and the tests, so all three run the same real parts: a real
Mosquitto started with the project's generated config and ACL on a free loopback port, a real
SQLite ledger, and terminals speaking the real protocol through paho.
"""

import dataclasses
from dataclasses import dataclass, field
import itertools
from pathlib import Path
import secrets

from ledger.intake import Intake
from ledger.park_home import STATION_KINDS, ParkHome
from ledger.service import LedgerService
from protocol.messages import CardRef, LineItem
from terminal.identity import TerminalIdentity
from terminal.net import LedgerLink
from terminal.outbox import Outbox
from transport.broker_config import BrokerUser, hash_password
from transport.mosquitto_process import MosquittoProcess, free_port

PARK_ID = "P1"
# The sample park: a fishing pond run by the park, a riding school run by a contractor who pays a
# 15 % commission, and a front desk.
STATIONS = (
    ("fishing", "钓鱼 Fishing pond", None, 0),
    ("riding", "骑马 Horse riding", "C-HORSE", 1500),
    ("bbq", "烧烤 BBQ", None, 0),
    ("desk", "总台 Front desk", None, 0),
)
OBSERVER = "observer"
# (staff id, name, role, staff card number, PIN) — sample staff; PINs only ever stored hashed.
STAFF = (
    ("wang", "王芳 Wang Fang", "cashier", "S0001", "1234"),
    ("li", "李娜 Li Na", "front_desk", "S0002", "2345"),
    ("zhao", "赵强 Zhao Qiang", "supervisor", "S0003", "3456"),
)


@dataclass
class ParkRig:
    root: Path
    mqtt_version: str = "5"
    park_id: str = PARK_ID
    # Most tests script requests straight onto a terminal's link with no one logged in; the demo
    # logs everyone in, as a real park (``fieldpos ledger init``) requires.
    require_login: bool = False
    home: ParkHome = field(init=False)
    broker: MosquittoProcess | None = None  # or an EmbeddedBroker (same surface)
    ledger: LedgerService | None = None
    observer_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    _links: list = field(default_factory=list)
    _reader: object = None
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self):
        self.root = Path(self.root)
        self.home = ParkHome(self.root / "ledger-home")

    # ------------------------------------------------------------ setup
    def create(self, terminals: dict[str, str], *, kinds_by_terminal: dict | None = None) -> "ParkRig":
        """Init the ledger, its stations, and provision ``{terminal_id: station_id}``."""
        self.home.init(self.park_id, "示范农庄 Demo Farm Park", require_login=self.require_login)
        store = self.home.open_store()
        try:
            for station_id, name, contractor, commission_bp in STATIONS:
                store.add_station(self.park_id, station_id, name, contractor_id=contractor, commission_bp=commission_bp)
        finally:
            store.close()
        for staff_id, name, role, card_no, pin in STAFF:
            self.home.add_staff(staff_id, name, role, card_no, pin)
        self.port = free_port()
        for terminal_id, station_id in terminals.items():
            kinds = (kinds_by_terminal or {}).get(terminal_id) or STATION_KINDS["front_desk" if station_id == "desk" else "station"]
            self.home.provision_terminal(terminal_id, station_id, kinds=kinds, broker_port=self.port)
        return self

    def write_broker_config(self) -> Path:
        return self.home.write_broker_config(
            port=self.port,
            extra_users=[BrokerUser(OBSERVER, hash_password(self.observer_password))],
            extra_users_acl={OBSERVER: ["read fieldpos/#"]},
        )

    def start_broker(self, prefer: str = "mosquitto"):
        """Start the park's broker: ``prefer`` is "mosquitto", "embedded" (amqtt, MQTT 3.1.1 only) or
        "auto" (Mosquitto if installed); see :func:`host_sim.embedded_broker.start_park_broker`."""
        from .embedded_broker import start_park_broker  # imports amqtt, which only the embedded broker needs

        self.broker = start_park_broker(self.write_broker_config().parent, self.port, prefer=prefer)
        return self.broker

    def make_ledger(self, **store_options) -> LedgerService:
        login = self.home.ledger_login()
        intake = Intake(self.home.open_store(**store_options), self.home.ledger_keys())
        return LedgerService(intake, park_id=self.park_id, host="127.0.0.1", port=self.port,
                             username=login["username"], password=login["password"], mqtt_version=self.mqtt_version)

    def start_ledger(self, *, notification_sender=None, **store_options) -> LedgerService:
        from ledger.notify import Notifier

        self.ledger = self.make_ledger(**store_options).start()
        self.notifier = Notifier(self.home.store_location, notification_sender).start()
        if not self.ledger.is_subscribed.wait(10):
            raise RuntimeError("the ledger did not subscribe within 10 s")
        return self.ledger

    @property
    def reader(self):
        """A connection of its own to the books, for looking while the ledger runs: the ledger's
        connection belongs to its thread (a second thread's BEGIN would land inside its batch)."""
        if self._reader is None:
            self._reader = self.home.open_store()
        return self._reader

    def stop_ledger(self) -> None:
        if getattr(self, "notifier", None) is not None:
            self.notifier.stop()
            self.notifier = None
        if self.ledger is not None:
            self.ledger.stop()
            self.ledger.intake.store.close()
            self.ledger = None

    # ------------------------------------------------------------ cards and station config
    def virtual_card(self, card_no: str, *, issuance: int = 1, kind: str = "temporary", uid: bytes | None = None):
        """A MIFARE Classic 1K card carrying a record signed with the ledger's card-record key,
        as the front desk's card writer would leave it."""
        from host_sim.devices.mifare import MifareClassic1K
        from protocol.card_record import RECORD_BLOCKS, CardRecord, sign_record
        from protocol.envelope import Purpose

        uid = uid or bytes.fromhex(card(card_no, issuance).uid)
        data = sign_record(CardRecord(card_no, issuance, kind, self.park_id), uid,
                           self.home.ledger_keys().for_purpose(Purpose.CARD_RECORD).signing_key)
        virtual = MifareClassic1K(uid, name=card_no)
        for index, block in enumerate(RECORD_BLOCKS):
            virtual.set_block(block, data[index * 16 : (index + 1) * 16])
        # The record's sectors are locked with this card's own key A, as the card writer leaves them.
        from host_sim.devices.mifare import TRANSPORT_ACCESS_BYTES, TRANSPORT_KEY
        from protocol.card_record import sector_key

        key = sector_key(self.home.ledger_keys().card_key_master, uid)
        for sector in (1, 2):
            virtual.set_sector_trailer(sector, key_a=key, access_bytes=TRANSPORT_ACCESS_BYTES, key_b=TRANSPORT_KEY)
        return virtual

    def station_config(self, terminal_id: str, **overrides):
        """The station config a technician would write for this terminal, with the park's staff."""
        from terminal.config import StationConfig

        station_id = self.identity(terminal_id).station_id
        name = next((name for sid, name, *_ in STATIONS if sid == station_id), station_id)  # a station a test added
        staff = {card_no: (staff_id, person) for staff_id, person, _, card_no, _ in STAFF}
        settings = dict(park_name="示范农庄 Demo Farm", station_name=name, staff=staff)
        return StationConfig(**(settings | overrides))

    def identity(self, terminal_id: str) -> TerminalIdentity:
        return TerminalIdentity.load(self.home.bundle_path(terminal_id))

    def link(self, terminal_id: str, *, connect: bool = True, port: int | None = None, **options) -> LedgerLink:
        """The terminal's link to the ledger; ``port`` reaches the broker another way (a CuttableLink)."""
        outbox = Outbox(self.root / f"terminal-{terminal_id}.db")
        identity = self.identity(terminal_id)
        if port is not None:
            identity = dataclasses.replace(identity, broker=dataclasses.replace(identity.broker, port=port))
        link = LedgerLink(identity, outbox, mqtt_version=self.mqtt_version, **options)
        self._links.append(link)
        if connect:
            link.connect()
        return link

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        for link in self._links:
            try:
                link.close()
            finally:
                link.outbox.close()
        self._links.clear()
        self.stop_ledger()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- request builders for scripts
def card(no: str, issuance: int = 1, uid: str | None = None) -> CardRef:
    """A card reference; the UID is derived from the number unless given (a stable 4-byte UID)."""
    return CardRef(no=no, issuance=issuance, uid=uid or f"{int(no[-6:], 36) & 0xFFFFFFFF:08x}")


def common(link: LedgerLink, seq: int, card_ref: CardRef, operator: str = "op-1") -> dict:
    identity = link.identity
    return dict(park=identity.park_id, terminal=identity.terminal_id, seq=seq, terminal_time_ms=link.clock_ms(),
                clock_uncertain=False, operator=operator, config_version=0, card=card_ref)


def single_line(name: str, amount_fen: int) -> tuple:
    return (LineItem(item=name, qty=1, unit_fen=amount_fen),)
