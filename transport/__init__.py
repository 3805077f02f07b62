"""What the terminal, the ledger and the park's tools share to talk over MQTT.

The paho-mqtt client helper (``mqtt``), the broker's config, password file and ACL
(``broker_config``), the Mosquitto process the park runs (``mosquitto_process``) and the park CA for
its TLS listener (``park_ca``, which needs the ``server`` extra and is never imported on a till).

It sits just above ``protocol``: it may import ``protocol`` and nothing else of ours — never
``terminal``, ``ledger``, ``tools`` or ``host_sim`` — so that both apps can stand on it without
standing on each other (``tools/check_layers.py`` holds the rule).
"""
