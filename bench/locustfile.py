"""Locust: missed calls as correctly signed Twilio voice-status webhooks
(CallStatus no-answer), each from its own caller (owner: perf engineer).

    locust -f bench/locustfile.py --headless -u 200 -r 50 -t 20s \
           --host http://127.0.0.1:8080

Each user sends at most CALLS_PER_USER_PER_S webhooks per second (default
1), so -u sets the rate. Environment: PUBLIC_BASE_URL (the URL nmc signs
over, its PUBLIC_BASE_URL; default the --host), TWILIO_AUTH_TOKEN (default
test-auth-token), TO (a number of the tenant, default +15550001000), RUN (a
3-digit area code keeping callers distinct across runs; default random
200-999, since the repeat-window gate blocks a caller texted within the
hour). The first-SMS latency itself is measured by bench/first_sms.sh.
"""
import base64
import hashlib
import hmac
import itertools
import os
import random
import urllib.parse

from locust import FastHttpUser, constant_throughput, task

PATH = "/webhooks/twilio/voice-status"
TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "test-auth-token")
TO = os.environ.get("TO", "+15550001000")
RUN = int(os.environ.get("RUN", str(random.randint(200, 999))))
RATE_PER_USER = float(os.environ.get("CALLS_PER_USER_PER_S", "1"))
_seq = itertools.count()


def twilio_signature(token, url, params):
    """base64(HMAC-SHA1(token, url + each param name and value sorted by name))."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def caller_for(n):
    """A distinct E.164 caller: +1 RUN NNNNNNN."""
    return "+1%03d%07d" % (RUN, n % 10_000_000)


class MissedCaller(FastHttpUser):
    wait_time = constant_throughput(RATE_PER_USER)

    def on_start(self):
        self.public_url = os.environ.get("PUBLIC_BASE_URL", self.host).rstrip("/") + PATH

    @task
    def missed_call(self):
        n = next(_seq)
        params = {
            "AccountSid": "AClocust00000000000000000000000000",
            "CallSid": "CAlocust%03d%012d" % (RUN, n),
            "CallStatus": "no-answer",
            "CallDuration": "0",
            "Direction": "inbound",
            "From": caller_for(n),
            "To": TO,
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(TOKEN, self.public_url, params),
        }
        with self.client.post(PATH, data=urllib.parse.urlencode(params), headers=headers,
                              name="voice-status", catch_response=True) as res:
            if res.status_code != 200 or "<Response/>" not in (res.text or ""):
                res.failure("status %s: %s" % (res.status_code, (res.text or "")[:200]))
