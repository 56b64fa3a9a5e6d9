#!/usr/bin/env python3
"""Full fetches per second on this one box: `xgate demo` (the gateway and all 20 demo adapters as
separate processes, SQLite audit with synchronous=FULL) under `xgate-load`, asking every record
type of the sample citizen (43 types over the departments that hold personal records) or the
sample company (20 types); and the gateway's CPU time per such fetch (utime+stime from /proc).

Side by side: give several build folders; each round runs them in turn, so noise on this 2-core
box hits both alike. Usage:

    integration-tests/load/full-fetch.py [--rounds 2] [--concurrency 16] [--duration 8] \
        [--kind citizen|company] BIN_DIR [BIN_DIR ...]

BIN_DIR holds `xgate` and `xgate-load` (e.g. ./target/release)."""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time

TCK = os.sysconf('SC_CLK_TCK')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / TCK


def gateway_pid(demo):
    """The gateway: the demo process itself, or its child named `xgate`."""
    out = subprocess.run(['pgrep', '-x', '-P', str(demo.pid), 'xgate'],
                         capture_output=True, text=True).stdout.split()
    return int(out[-1]) if out else demo.pid


def run(bin_dir, args, work):
    port = free_port()
    workdir = os.path.join(work, 'demo')
    shutil.rmtree(workdir, ignore_errors=True)
    demo = subprocess.Popen([os.path.join(bin_dir, 'xgate'), 'demo', '--workdir', workdir,
                             '--listen', f'127.0.0.1:{port}'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Serving once the demo's own fetches are done ("demo: done in ..." on stderr).
        for line in demo.stdout:
            if line.startswith('demo: done in'):
                break
        else:
            sys.exit('the demo exited before serving')
        time.sleep(1)
        gw = gateway_pid(demo)
        pki = os.path.join(workdir, 'pki')
        subject = []
        if args.kind == 'company':
            subject = ['--subject', args.company]
        before = cpu_seconds(gw)
        load = subprocess.run([os.path.join(bin_dir, 'xgate-load'), '--target', f'https://127.0.0.1:{port}',
                               '--cert', os.path.join(pki, 'requester-approval-hall-demo.pem'),
                               '--key', os.path.join(pki, 'requester-approval-hall-demo-key.pem'),
                               '--ca', os.path.join(pki, 'ca.pem'),
                               '--concurrency', str(args.concurrency), '--connections', '4',
                               '--warmup', '0', '--duration', str(args.duration), '--json'] + subject,
                              capture_output=True, text=True)
        used = cpu_seconds(gw) - before
        if load.returncode != 0:
            sys.exit(f'xgate-load failed:\n{load.stdout}\n{load.stderr}')
        report = json.loads(load.stdout)
        return report, used
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(20)
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
    p.add_argument('bins', nargs='+')
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            for b in args.bins:
                report, used = run(b, args, work)
                ops = report['operations']
                secs = report['seconds']
                statuses = report.get('record_status', {})
                print(f'round {r + 1} {b}: {ops / secs:.1f} full fetches/s ({ops} in {secs:.1f} s), '
                      f'p50 {report["p50_us"] / 1000:.1f} ms, p99 {report["p99_us"] / 1000:.1f} ms, '
                      f'gateway cpu {1000 * used / max(ops, 1):.2f} ms/fetch, '
                      f'errors {report.get("errors", 0)}, records {statuses}', flush=True)


if __name__ == '__main__':
    main()
