#!/usr/bin/env python3
"""The gateway's CPU time per fetch in an `xgate-bench e2e` run: less sensitive to other load
on the machine than throughput. Usage (one gateway, so no --cache-on-arm):

    integration-tests/load/cpu-per-fetch.py ./target/release/xgate-bench --runs 2 --duration 4 --warmup 1 --no-nginx --no-h2load

utime+stime of the gateway process (sampled every 100 ms until it exits) divided by the fetches
of arm (c), warm-up included at the measured rate."""
import subprocess, sys, time, os, json, tempfile
bench = sys.argv[1]; args = sys.argv[2:]
js = tempfile.mktemp(suffix='.json')
p = subprocess.Popen([bench, 'e2e', '--json', js] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
gw = None; last = 0; tck = os.sysconf('SC_CLK_TCK')
start = time.time()
while p.poll() is None:
    if gw is None:
        out = subprocess.run(['pgrep', '-x', '-P', str(p.pid), 'xgate'], capture_output=True, text=True).stdout.split()
        if out: gw = out[-1]
    if gw:
        try:
            f = open(f'/proc/{gw}/stat').read().rsplit(')', 1)[1].split()
            last = (int(f[11]) + int(f[12])) / tck
        except OSError:
            pass
    time.sleep(0.1)
out = p.stdout.read()
d = json.load(open(js))
for arm in d['arms']:
    if arm['arm'].startswith('(c)'):
        ops = sum(r['operations'] for r in arm['runs'])
        secs = sum(r['seconds'] for r in arm['runs'])
        tp = [round(r['throughput']) for r in arm['runs']]
# warm-up at about the measured rate
warm = float(args[args.index('--warmup') + 1]) if '--warmup' in args else 2.0
est = ops * (secs + warm * len(tp)) / secs
print(f"gateway cpu {last:.1f} s, fetches ~{est:.0f}, cpu/fetch {1e6*last/est:.0f} us, (c) throughput runs {tp}")
