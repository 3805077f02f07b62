"""The tap on its board: Wi-Fi, the MFRC522 on SPI, LEDs and buzzer on GPIO, the state on flash,
and the loop that joins them to tap.app. ``main.py`` at the board's root (flash.sh --board writes
it) calls :func:`main`.

The board's own settings are ``/tap_board.json`` (not signed: which pins, which Wi-Fi):

    {"wifi": {"ssid": "...", "password": "..."},
     "spi": {"id": 0, "sck": 2, "mosi": 3, "miso": 4, "cs": 5},
     "pins": {"green": 14, "red": 15, "buzzer": 16},
     "display": {"i2c": 0, "sda": 8, "scl": 9, "height": 32}}

``display`` is optional: an SSD1306 (tap.ssd1306) at I2C address 0x3C, 128x32 or 128x64.
flash.sh checks the settings and the bundle (tap.settings) before they reach the board.
"""

BUNDLE_PATH = "/bundle.json"
BOARD_PATH = "/tap_board.json"
STATE_PATH = "/tap_state.json"
DISPLAY_ADDRESS = 0x3C  # an SSD1306 module's usual address (SA0 low)
RECONNECT_PAUSE_MS = 5000
KEEPALIVE_PING_MS = 30000

try:
    from time import ticks_diff as _ticks_diff  # MicroPython: its ticks wrap around
except ImportError:
    def _ticks_diff(new, old):
        return new - old


def serve(app, reader, connect, ticks_ms, sleep_ms, turns=None, guard=None):
    """The tap's loop: keep a connection (re-sending the outbox on each), sell to each card
    tapped, take what the broker sends. ``turns``: stop after that many (tests); None: forever.
    ``guard``: the tap.reboots.BootGuard that learns the tap runs well, and the park's limit."""
    last_ping = ticks_ms()
    while turns is None or turns > 0:
        if turns is not None:
            turns -= 1
        if guard is not None:
            guard.tick(app.config["offline"]["max_reboots"] if app.config is not None else None)
        if app.client is None:
            try:
                app.attach(connect())
                app.wait_welcome(2000)
            except OSError:
                app.client = None
                sleep_ms(RECONNECT_PAUSE_MS)
                continue
        tapped = None
        try:
            tapped = reader.read()
        except Exception as error:  # a card moved away or a garbled answer: show it, read again
            app.outputs.show("error", (str(error),))
        if tapped is not None:
            app.tap(tapped[0], tapped[1])
        try:
            app.poll(50)
            if _ticks_diff(ticks_ms(), last_ping) > KEEPALIVE_PING_MS:
                app.client.ping()
                last_ping = ticks_ms()
        except (OSError, AttributeError):
            app.client = None  # reconnect on the next turn


def main(machine=None, time=None, network=None, random_bytes=None):
    """Boot the tap. A board calls it bare (its own machine, time, network and os.urandom); the
    whole-tap tests hand in emulated hardware, a scripted clock and random source, and so run
    this very boot on the MicroPython ports."""
    import gc

    import tap

    gc.threshold(tap.HEAP_THRESHOLD_BYTES)
    if time is None:
        import time
    if machine is None:
        import machine

    from tap import reboots

    guard = reboots.BootGuard(reboots.BOOTS_PATH, time.ticks_ms)
    if not guard.boot():  # restarted too often: show it, report it, sell nothing
        _stopped(guard, machine, time, network)  # never returns; an error in it ends main.py without a reset
        return
    try:
        _run(guard, machine, time, network, random_bytes)
    except Exception as error:  # whatever ended the loop: counted at the next boot
        guard.crashed(error)
        machine.reset()


def _outputs(settings, machine, time):  # pragma: no cover - runs on the board only
    from tap import hal

    pins = settings["pins"]
    display = None
    if "display" in settings:
        from tap.ssd1306 import Ssd1306

        wiring = settings["display"]
        i2c = machine.I2C(wiring["i2c"], sda=machine.Pin(wiring["sda"]), scl=machine.Pin(wiring["scl"]), freq=400000)
        display = Ssd1306(lambda data: i2c.writeto(DISPLAY_ADDRESS, data), wiring.get("height", 64))
    return hal.PinHal(machine.Pin(pins["green"], machine.Pin.OUT), machine.Pin(pins["red"], machine.Pin.OUT),
                      machine.Pin(pins["buzzer"], machine.Pin.OUT), display=display, sleep_ms=time.sleep_ms)


def _network(settings, network=None):  # pragma: no cover - runs on the board only
    if network is None:
        import network

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect(settings["wifi"]["ssid"], settings["wifi"]["password"])


def _load(path):  # pragma: no cover - runs on the board only
    import json

    with open(path) as file:
        return json.load(file)


def _connector(bundle):
    from tap import mqtt, net

    broker = bundle["broker"]

    def connect():
        client = mqtt.MqttClient(net.connect(broker["host"], broker["port"], broker.get("tls_ca")),
                                 bundle["terminal_id"], broker["username"], broker["password"])
        client.connect()
        return client

    return connect


def _stopped(guard, machine, time, network):  # pragma: no cover - runs on the board only
    from tap import reboots

    settings = _load(BOARD_PATH)
    outputs = _outputs(settings, machine, time)
    bundle = _load(BUNDLE_PATH)
    _network(settings, network)
    connect = _connector(bundle)

    def report():
        try:
            state = _load(STATE_PATH)
            seq, depth = state["seq"], len(state["outbox"])
        except Exception:
            seq, depth = 0, 0
        client = connect()
        client.publish(*reboots.fault_report(bundle, seq, depth), retain=True)
        client.disconnect()

    reboots.stopped(guard, outputs, report, time.sleep_ms)


def _run(guard, machine, time, network, random_bytes):  # pragma: no cover - runs on the board only
    if random_bytes is None:
        import os

        random_bytes = os.urandom
    from tap import mfrc522
    from tap.app import TapApp
    from tap.state import TapState

    bundle = _load(BUNDLE_PATH)
    settings = _load(BOARD_PATH)
    _network(settings, network)
    outputs = _outputs(settings, machine, time)
    spi_pins = settings["spi"]
    spi = machine.SPI(spi_pins["id"], baudrate=1000000, polarity=0, phase=0, sck=machine.Pin(spi_pins["sck"]),
                      mosi=machine.Pin(spi_pins["mosi"]), miso=machine.Pin(spi_pins["miso"]))
    chip = mfrc522.Mfrc522(mfrc522.machine_spi_transfer(spi, machine.Pin(spi_pins["cs"], machine.Pin.OUT, value=1)),
                           time.sleep_ms)
    chip.reset()
    reader = mfrc522.CardReader(chip, bytes.fromhex(bundle["card_key_master"]))
    app = TapApp(bundle, TapState(STATE_PATH), outputs, time.ticks_ms, random_bytes)
    serve(app, reader, _connector(bundle), time.ticks_ms, time.sleep_ms, guard=guard)
