#!/usr/bin/env python3
"""Write the Mosquitto ACL for Sparwatt from a mosquitto_passwd password file.

The rules live in sparwatt/broker_acl.py (standard library only), which
`sparwatt-collector gateway add` and `gateway revoke` use as well. This script runs them
from a checkout, for a password file kept by hand:

    sparwatt-acl.py /etc/mosquitto/sparwatt/passwd -o /etc/mosquitto/sparwatt/acl
    systemctl reload mosquitto        # Mosquitto re-reads the ACL on SIGHUP
"""

from __future__ import annotations

import sys
from pathlib import Path

# the checkout this script ships in, so it runs without an installed Sparwatt
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sparwatt.broker_acl import main

if __name__ == "__main__":
    sys.exit(main())
