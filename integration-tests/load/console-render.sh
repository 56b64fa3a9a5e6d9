#!/usr/bin/env bash
# Server time of the web console's pages, from their `Server-Timing: app;dur=`
# header (the handler: session lookup, the gRPC service it calls in process,
# the template), against a running demo:
#
#   ./target/release/xgate demo --workdir xgate-demo --ready-file /tmp/xgate-ready.json &
#   integration-tests/load/console-render.sh /tmp/xgate-ready.json [ROUNDS]
#
# Signs in as the auditor and as public security (`xgate console login`),
# requests each page ROUNDS times (default 50) and prints the median, p99 and
# maximum server time per page, in milliseconds. Needs curl and python3.
set -euo pipefail
ready=${1:?usage: console-render.sh READY_FILE [ROUNDS]}
rounds=${2:-50}
xgate=${XGATE:-$(dirname "$0")/../../target/release/xgate}
read -r gateway console pki citizen < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["gateway"], d["console"], d["pki"], d["citizen"])' "$ready")

session() { # ROLE-STEM -> cookie
    local url
    url=$("$xgate" console login --gateway "$gateway" --cert "$pki/$1.pem" \
        --key "$pki/$1-key.pem" --ca "$pki/ca.pem" 2>/dev/null)
    curl -sk -o /dev/null -D - "$url" | grep -io '__Host-xgate-session=[0-9a-f]*'
}

measure() { # COOKIE PATH
    for _ in $(seq "$rounds"); do
        curl -sk -o /dev/null -D - -H "Cookie: $1" "$console$2" |
            grep -io 'app;dur=[0-9.]*' | cut -d= -f2
    done | python3 -c '
import sys
xs = sorted(float(l) for l in sys.stdin if l.strip())
if not xs:
    sys.exit("no Server-Timing header: is that a console session?")
p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
print(f"{sys.argv[1]:<48} n={len(xs):<4} median {p(0.5):7.2f}  p99 {p(0.99):7.2f}  max {xs[-1]:7.2f} ms")' "$2"
}

auditor=$(session auditor-auditor)
department=$(session department-public-security)
echo "console $console, $rounds requests per page, server time (Server-Timing app;dur)"
measure "$auditor" "/"
measure "$auditor" "/audit?subject_id=$citizen"
measure "$auditor" "/audit/subject?id=$citizen"
measure "$auditor" "/audit/chain"
measure "$auditor" "/scorecards?days=30"
measure "$department" "/objections"
measure "$department" "/scorecards?days=30"
