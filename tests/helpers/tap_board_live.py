# The whole tap on the MicroPython unix port, live: the board's own boot (tap.board.main) with its
# real clock, random source and network (tap.net to the broker the bundle names), and its SPI and
# I2C buses carried over a socket to host_sim's MFRC522 and SSD1306 emulations in the test
# (tests/test_tap_board.py). MicroPython-safe; compiled with mpy-cross beside tap/*.mpy and
# imported by a one-line main.py, as on a board. The working folder holds bundle.json,
# tap_board.json and devices.port (the emulations' TCP port). A bus exchange is one byte of kind
# (S: SPI, I: I2C), two of length, the bytes; the answer two of length and the bytes (0xFFFF:
# the test's taps are over, which ends the loop). Prints "HEAP <phase> <bytes>" after a collection
# as each phase starts, "PEAK <phase> <bytes>" (the most in use seen in it), then "ENDED" and
# "PINS" (the LED and buzzer writes).
import gc
import socket

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
    """The test's taps are over: ends tap.board's endless loop (not an Exception, so not a crash)."""


class Bus:
    socket = None

    @staticmethod
    def open():
        with open("devices.port") as file:
            port = int(file.read())
        Bus.socket = socket.socket()
        Bus.socket.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])

    @staticmethod
    def _read(count):
        data = b""
        while len(data) < count:
            part = Bus.socket.read(count - len(data))
            if not part:
                raise OSError("the device emulation closed the bus")
            data += part
        return data

    @staticmethod
    def exchange(kind, data):
        _sample()
        Bus.socket.write(bytes((kind, len(data) >> 8, len(data) & 0xFF)) + bytes(data))
        head = Bus._read(2)
        count = head[0] << 8 | head[1]
        if count == 0xFFFF:
            raise Finished()
        return Bus._read(count)


class Pin:
    OUT = 1
    writes = []

    def __init__(self, number, mode=None, value=None):
        self.number = number

    def value(self, level):
        if self.number != 5:  # the MFRC522's chip select (tap_board_record.SPI_PINS): not an output
            Pin.writes.append("%d=%d" % (self.number, level))


class Spi:
    polls = 0
    POLL_PHASES = ("ready", "sold-1", "removed", "sold-2")

    def __init__(self, *args, **kwargs):
        phase("drivers")

    def write_readinto(self, data, answer):
        if bytes(data) == b"\x12\x26":  # REQA into the FIFO: the loop polls the reader
            if Spi.polls < len(Spi.POLL_PHASES):
                phase(Spi.POLL_PHASES[Spi.polls])
            Spi.polls += 1
        answer[:] = Bus.exchange(83, data)


class I2c:
    def __init__(self, *args, **kwargs):
        pass

    def writeto(self, address, data):
        Bus.exchange(73, data)


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


def run():
    phase("start")
    Bus.open()
    from tap import board, reboots

    board.BUNDLE_PATH, board.BOARD_PATH, board.STATE_PATH = "bundle.json", "tap_board.json", "tap_state.json"
    reboots.BOOTS_PATH = "tap_boots.json"
    ended = "returned"
    try:
        board.main(Machine, None, Network)
    except Finished:
        ended = "reset" if Machine.was_reset else "finished"
    phase("end")
    print("ENDED", ended)
    if Machine.was_reset:
        with open("tap_boots.json") as file:
            print("CRASH", file.read())
    print("PINS", " ".join(Pin.writes))


run()
