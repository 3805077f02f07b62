# The whole tap on a MicroPython port: the board's own boot (tap.board.main: the reboot guard,
# Wi-Fi, the SSD1306 on I2C, the MFRC522 on SPI, the app, the loop) with its hardware at the byte
# level, replaying a whole sale recorded by tests/helpers/tap_board_record.py. MicroPython-safe;
# compiled with mpy-cross beside tap/*.mpy and imported by a one-line script, as a board's main.py.
# Files in the working folder (the recorder writes the first five):
#   bundle.json, tap_board.json  what flash.sh puts on a board (relative paths here)
#   spi.log   one "MOSI_HEX MISO_HEX" line per SPI exchange the MFRC522 emulation answered
#   mqtt.log  "out HEX" / "in HEX" lines: the broker's bytes, released as the tap writes its own
#   i2c.log   written here: one line per I2C transaction to the display, for the SSD1306 emulation
# Each write is compared with the recording (SPI and MQTT mismatches are counted); the run ends
# when the SPI recording does (the loop's next reader poll). Prints "HEAP <phase> <bytes>" (in use
# after a collection at the phase's start) and "PEAK <phase> <bytes>" (the most in use, garbage
# included, seen at any clock read, SPI exchange or MQTT write within the phase).
import gc
import sys
from binascii import hexlify, unhexlify

_phase = ["start"]
_peak = {}


def _sample():
    used = gc.mem_alloc()
    if used > _peak.get(_phase[0], 0):
        _peak[_phase[0]] = used


def phase(name):
    _sample()
    print("PEAK", _phase[0], _peak.get(_phase[0], 0))
    gc.collect()
    print("HEAP", name, gc.mem_alloc())
    _phase[0] = name


class Finished(BaseException):
    """The recording is over: ends tap.board's endless loop (not an Exception, so not a crash)."""


class Clock:
    """The board's time module: a clock that moves 1 ms a read and by each sleep, so the tap's
    requests carry the recorded times."""
    now = 1000

    @staticmethod
    def ticks_ms():
        _sample()
        Clock.now += 1
        return Clock.now

    @staticmethod
    def ticks_diff(new, old):
        return new - old

    @staticmethod
    def sleep_ms(ms):
        Clock.now += ms


class Pin:
    OUT = 1
    writes = []

    def __init__(self, number, mode=None, value=None):
        self.number = number

    def value(self, level):
        if self.number != 5:  # the MFRC522's chip select (tap_board_record.SPI_PINS): not an output
            Pin.writes.append("%d=%d" % (self.number, level))


class Spi:
    mismatches = 0
    exchanges = 0
    polls = 0
    POLL_PHASES = ("ready", "sold-1", "removed", "sold-2")

    def __init__(self, *args, **kwargs):
        phase("drivers")
        self.log = open("spi.log", "rb")

    def write_readinto(self, data, answer):
        _sample()
        if bytes(data) == b"\x12\x26":  # REQA into the FIFO: the loop polls the reader
            if Spi.polls < len(Spi.POLL_PHASES):
                phase(Spi.POLL_PHASES[Spi.polls])
            Spi.polls += 1
        line = self.log.readline()
        if not line:
            raise Finished()
        mosi, miso = line.split()
        if hexlify(data) != mosi:
            Spi.mismatches += 1
        answer[:] = unhexlify(miso)
        Spi.exchanges += 1


class I2c:
    def __init__(self, *args, **kwargs):
        self.log = open("i2c.log", "wb")

    def writeto(self, address, data):
        self.log.write(hexlify(data))
        self.log.write(b"\n")
        self.log.flush()


class Machine:
    Pin = Pin
    SPI = Spi
    I2C = I2c

    was_reset = False

    @staticmethod
    def reset():  # tap.board.main's answer to a crash (counted in tap_boots.json first)
        Machine.was_reset = True
        raise Finished()


class Network:
    STA_IF = 0

    class WLAN:
        def __init__(self, interface):
            pass

        def active(self, on):
            pass

        def connect(self, ssid, password):
            pass


class Playback:
    """The broker: each recorded inbound block is readable once the tap has written everything
    recorded before it; a write that differs from the recording is a mismatch."""
    mismatches = 0

    def __init__(self):
        self.log = open("mqtt.log", "rb")
        self.expected = None
        self.written = bytearray()
        self.inbound = bytearray()
        self.ended = False
        self._release()

    def _release(self):
        while True:
            if self.expected is None:
                line = self.log.readline()
                if not line:
                    self.ended = True
                    return
                direction, data = line.split()
                data = unhexlify(data)
                if direction == b"in":
                    self.inbound += data
                    continue
                self.expected = data
            if len(self.written) < len(self.expected):
                return
            if bytes(self.written[:len(self.expected)]) != self.expected:
                Playback.mismatches += 1
            self.written = self.written[len(self.expected):]
            self.expected = None

    def write(self, data):
        _sample()
        self.written += data
        self._release()

    def readinto(self, buffer):
        count = min(len(buffer), len(self.inbound))
        buffer[:count] = self.inbound[:count]
        self.inbound = self.inbound[count:]
        return count

    def readable(self, timeout_ms):
        return bool(self.inbound)

    def finished(self):
        return self.ended and not self.written and not self.inbound


_streams = []


def _connect(host, port, tls_ca):
    phase("app")
    stream = Playback()
    _streams.append(stream)
    return stream


def _random(count):
    return bytes(range(count))


def run():
    phase("start")
    import tap
    from tap import board, reboots

    board.BUNDLE_PATH, board.BOARD_PATH, board.STATE_PATH = "bundle.json", "tap_board.json", "tap_state.json"
    reboots.BOOTS_PATH = "tap_boots.json"
    try:
        from tap import net  # its code in the heap as on a board; only its connect is the recording's
        net.connect = _connect
    except ImportError:  # the WebAssembly port has no socket module: a stand-in of one function
        class net:
            connect = _connect
        sys.modules["tap.net"] = tap.net = net
    ended = "returned"
    try:
        board.main(Machine, Clock, Network, _random)
    except Finished:
        ended = "reset" if Machine.was_reset else "finished"
    except MemoryError:
        ended = "MemoryError"
    phase("end")
    print("ENDED", ended)
    if Machine.was_reset:
        with open("tap_boots.json") as file:
            print("CRASH", file.read())
    print("SPI exchanges", Spi.exchanges, "mismatches", Spi.mismatches)
    print("MQTT mismatches", Playback.mismatches, "finished", len(_streams) == 1 and _streams[0].finished())
    print("PINS", " ".join(Pin.writes))
    print("FREE", gc.mem_free())


run()
