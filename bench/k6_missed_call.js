// k6: missed calls at a constant arrival rate, each a correctly signed
// Twilio voice-status webhook (CallStatus no-answer) from its own caller
// (owner: perf engineer). Checks every answer is 200 with the empty TwiML.
// The first SMS itself is measured by bench/first_sms.sh, which embeds the
// Twilio emulator; point TWILIO_API_BASE at an emulator (nmc-fakes) to see
// them here.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e TOKEN=test-auth-token \
//          -e RATE=500 -e DURATION=20s bench/k6_missed_call.js
//
// Environment: BASE_URL (where k6 sends), PUBLIC_BASE_URL (the URL nmc
// signs over, its PUBLIC_BASE_URL; default BASE_URL), TOKEN
// (TWILIO_AUTH_TOKEN), TO (a number of the tenant, default +15550001000),
// RATE (calls/s, default 50), DURATION (default 20s), VUS (pre-allocated,
// default 100), RUN (a 3-digit area code to keep callers distinct across
// runs, default random 200-999: the repeat-window gate would block a
// caller texted within the hour).
import http from 'k6/http';
import crypto from 'k6/crypto';
import exec from 'k6/execution';
import { check } from 'k6';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const PUBLIC_BASE_URL = (__ENV.PUBLIC_BASE_URL || BASE_URL).replace(/\/+$/, '');
const TOKEN = __ENV.TOKEN || 'test-auth-token';
const TO = __ENV.TO || '+15550001000';
const RATE = parseInt(__ENV.RATE || '50', 10);
const PATH = '/webhooks/twilio/voice-status';
const RUN = parseInt(__ENV.RUN || String(200 + Math.floor(Math.random() * 800)), 10);

export const options = {
  scenarios: {
    missed_calls: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '20s',
      preAllocatedVUs: parseInt(__ENV.VUS || '100', 10),
      maxVUs: parseInt(__ENV.MAX_VUS || '1000', 10),
    },
  },
  thresholds: {
    checks: ['rate==1'],
    'http_req_duration{endpoint:voice-status}': ['p(95)<2'],
  },
};

// X-Twilio-Signature: base64(HMAC-SHA1(token, public URL + each POST
// parameter's name and value, sorted by name)).
export function twilioSignature(token, url, params) {
  const data = Object.keys(params).sort().reduce((acc, k) => acc + k + params[k], url);
  return crypto.hmac('sha1', token, data, 'base64');
}

function formEncode(params) {
  return Object.keys(params)
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(params[k])}`)
    .join('&');
}

// A distinct E.164 caller per iteration: +1 RUN NNNNNNN.
function callerFor(n) {
  return `+1${RUN}${String(n % 10000000).padStart(7, '0')}`;
}

export default function () {
  const n = exec.scenario.iterationInTest;
  const params = {
    AccountSid: 'ACk6000000000000000000000000000000',
    CallSid: `CAk6${RUN}${String(n).padStart(12, '0')}`,
    CallStatus: 'no-answer',
    CallDuration: '0',
    Direction: 'inbound',
    From: callerFor(n),
    To: TO,
  };
  const res = http.post(`${BASE_URL}${PATH}`, formEncode(params), {
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-Twilio-Signature': twilioSignature(TOKEN, PUBLIC_BASE_URL + PATH, params),
    },
    tags: { endpoint: 'voice-status' },
  });
  check(res, {
    'status is 200': (r) => r.status === 200,
    'empty TwiML': (r) => typeof r.body === 'string' && r.body.indexOf('<Response/>') >= 0,
  });
}
