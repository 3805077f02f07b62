"""The floor for the ledger benches: answers every request by publishing its payload back on the
terminal's result topic. Same broker, same QoS 1, same single select loop; no crypto, no database."""

from pathlib import Path
import select
import sys

# The project before bench/: bench/terminal.py would otherwise shadow the terminal package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol import topics  # noqa: E402
from transport import mqtt  # noqa: E402


def main(host: str, port: int, username: str, password: str, park_id: str, mqtt_version: str = "5") -> None:
    client = mqtt.make_client(username, username=username, password=password, persistent=False, mqtt_version=mqtt_version)
    ready = []

    def on_connect(client, userdata, flags, reason_code, properties):
        mqtt.set_nodelay(client)
        client.subscribe(topics.all_requests(park_id), qos=1)

    def on_subscribe(*args):
        ready.append(True)
        print("ready", flush=True)

    def on_message(client, userdata, message):
        client.publish(message.topic[: -len("req")] + "res", message.payload, qos=1)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(host, port, **mqtt.connect_arguments(client, persistent=False))
    while True:
        sock = client.socket()
        readable, writable, _ = select.select([sock], [sock] if client.want_write() else [], [], 0.1)
        if readable:
            while True:
                if client.loop_read() != 0:
                    return
                if not select.select([sock], [], [], 0)[0]:
                    break
        if writable or client.want_write():
            client.loop_write()
        client.loop_misc()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], *sys.argv[6:7])
