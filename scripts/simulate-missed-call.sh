#!/usr/bin/env bash
# Sends one correctly signed Twilio voice-status webhook (CallStatus
# no-answer) for the demo tenant's number to a running nmc, then shows what
# the Twilio emulator (nmc-fakes) received: the first SMS.
#
#   scripts/simulate-missed-call.sh [--from CALLER] [--to +15550001000]
#
# CALLER is an E.164 number such as +15551234567. Without --from each run
# is a new caller (+1555 and 7 random digits): a
# caller who already got a first SMS within FIRST_SMS_REPEAT_WINDOW_MINUTES
# (60) gets no second one, by design.
#
# Environment: NMC_URL (default http://127.0.0.1:${PORT:-8080}), PUBLIC_BASE_URL
# (the URL nmc believes it is reached at: it signs over that, default NMC_URL),
# TWILIO_AUTH_TOKEN (default test-auth-token), FAKES_URL (default
# http://127.0.0.1:${FAKES_PORT:-8081}).
set -euo pipefail
from="+1555$(printf '%07d' $(( (RANDOM << 15 | RANDOM) % 10000000 )))"
to="+15550001000"
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from=$2; shift 2 ;;
    --to) to=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
# Settings of the running demo (scripts/run-local.sh writes them).
demo_env="$(cd "$(dirname "$0")/.." && pwd)/.local/demo.env"
# shellcheck disable=SC1090
if [ -f "$demo_env" ]; then . "$demo_env"; fi
nmc_url=${NMC_URL:-http://127.0.0.1:${PORT:-8080}}
public=${PUBLIC_BASE_URL:-$nmc_url}
token=${TWILIO_AUTH_TOKEN:-test-auth-token}
fakes=${FAKES_URL:-http://127.0.0.1:${FAKES_PORT:-8081}}
path=/webhooks/twilio/voice-status
call_sid="CA$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# X-Twilio-Signature = base64(HMAC-SHA1(token, URL + each param name+value sorted by name))
sig=$(python3 - "$token" "${public%/}$path" "$call_sid" "$from" "$to" <<'PY'
import base64, hashlib, hmac, sys
token, url, sid, frm, to = sys.argv[1:6]
params = {"AccountSid": "ACdemo", "CallSid": sid, "CallStatus": "no-answer", "CallDuration": "0",
          "Direction": "inbound", "From": frm, "To": to}
data = url + "".join(k + params[k] for k in sorted(params))
print(base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode())
PY
)
echo "POST $nmc_url$path (CallSid=$call_sid From=$from To=$to)"
curl -sS -i -X POST "$nmc_url$path" -H "X-Twilio-Signature: $sig" \
  --data-urlencode "AccountSid=ACdemo" --data-urlencode "CallSid=$call_sid" \
  --data-urlencode "CallStatus=no-answer" --data-urlencode "CallDuration=0" \
  --data-urlencode "Direction=inbound" --data-urlencode "From=$from" --data-urlencode "To=$to"
echo
for _ in $(seq 1 50); do
  out=$(curl -sS "$fakes/_fakes/messages?to=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$from")")
  if printf '%s' "$out" | grep -q '"sid"'; then
    echo "SMS at the Twilio emulator ($fakes/_fakes/messages):"
    printf '%s\n' "$out"
    exit 0
  fi
  sleep 0.1
done
echo "no SMS reached the emulator within 5 s: check the nmc log (a caller texted within the repeat window," \
  "60 minutes by default, gets no second first SMS: first_reply.blocked reason repeat)" >&2
exit 1
