#!/usr/bin/env python3
"""Full fetches per second on this one box: `xgate demo` (the gateway and all 20 demo adapters as
separate processes, SQLite audit with synchronous=FULL) under `xgate-load`, asking every record
type of the sample citizen (43 types over the departments that hold personal records) or the
sample company (20 types); and the gateway's CPU time per such fetch (utime+stime from /proc).

Side by side: give several build folders, or several demo variants (`--variant NAME=FLAGS`, e.g.
`pg=--postgres postgres://postgres@127.0.0.1:5432/xgate_bench` or `2x=--replicas 2`); each round
runs every (folder, variant) in turn, so noise on this 2-core box hits them alike. Usage:

    integration-tests/load/full-fetch.py [--rounds 2] [--concurrency 16] [--duration 8] \
        [--kind citizen|company] [--variant NAME=FLAGS ...] BIN_DIR [BIN_DIR ...]

BIN_DIR holds `xgate` and `xgate-load` (e.g. ./target/release). The gateway CPU is the demo
process's (the in-process gateway) plus every replica's (`--replicas`, `--balanced`)."""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time

TCK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / TCK


def run(bin_dir, flags, args, work):
    workdir = os.path.join(work, 'demo')
    ready = os.path.join(work, 'ready.json')
    shutil.rmtree(workdir, ignore_errors=True)
    if os.path.exists(ready):
        os.remove(ready)
    demo = subprocess.Popen([os.path.join(bin_dir, 'xgate'), 'demo', '--workdir', workdir,
                             '--ready-file', ready] + flags,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Serving once the demo's own fetches are done and the ready file is written.
        deadline = time.time() + 300
        while not os.path.exists(ready):
            if demo.poll() is not None:
                sys.exit(f'the demo exited before serving:\n{demo.stderr.read()}')
            if time.time() > deadline:
                sys.exit('the demo did not get ready within 300 s')
            time.sleep(0.2)
        doc = json.load(open(ready))
        time.sleep(1)
        pids = [demo.pid] + [r['pid'] for r in doc.get('replicas', []) if r.get('pid')]
        pki = doc['pki']
        subject = []
        if args.kind == 'company':
            subject = ['--subject', args.company]
        before = sum(cpu_seconds(p) for p in pids)
        load = subprocess.run([os.path.join(bin_dir, 'xgate-load'), '--target', doc['gateway'],
                               '--cert', os.path.join(pki, 'requester-approval-hall-demo.pem'),
                               '--key', os.path.join(pki, 'requester-approval-hall-demo-key.pem'),
                               '--ca', os.path.join(pki, 'ca.pem'),
                               '--concurrency', str(args.concurrency), '--connections', '4',
                               '--warmup', '0', '--duration', str(args.duration), '--json'] + subject,
                              capture_output=True, text=True)
        used = sum(cpu_seconds(p) for p in pids) - before
        if load.returncode != 0:
            sys.exit(f'xgate-load failed:\n{load.stdout}\n{load.stderr}')
        report = json.loads(load.stdout)
        return report, used
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--concurrency', type=int, default=16)
    p.add_argument('--duration', type=float, default=8)
    p.add_argument('--kind', choices=['citizen', 'company'], default='citizen')
    p.add_argument('--company', default='9134160296291900X9',
                   help='the company subject (default: the synthetic sample company)')
    p.add_argument('--variant', action='append', default=[],
                   help='NAME=FLAGS: run the demo with FLAGS (space-separated) as arm NAME')
    p.add_argument('bins', nargs='+')
    args = p.parse_args()
    variants = [v.split('=', 1) for v in args.variant] or [['', '']]
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            for b, (name, flags) in [(b, v) for b in args.bins for v in variants]:
                report, used = run(b, flags.split(), args, work)
                b = f'{b} {name}'.strip()
                ops = report['operations']
                secs = report['seconds']
                statuses = report.get('record_status', {})
                print(f'round {r + 1} {b}: {ops / secs:.1f} full fetches/s ({ops} in {secs:.1f} s), '
                      f'p50 {report["p50_us"] / 1000:.1f} ms, p99 {report["p99_us"] / 1000:.1f} ms, '
                      f'gateway cpu {1000 * used / max(ops, 1):.2f} ms/fetch, '
                      f'errors {report.get("errors", 0)}, records {statuses}', flush=True)


if __name__ == '__main__':
    main()
