"""Profile one ``runas-async ecr login`` run in the benchmark's world with pyinstrument.

    uv run --frozen --with pyinstrument python -m bench.profile [--n 20] [--delay-ms 50]

pyinstrument is not a dependency: ``uv run --with`` lends it for the one command. The run
happens inside the sandbox's namespace, behind the latency proxy, exactly as the timed runs;
the text report (wall-clock time, awaits included) goes to stdout, and the proxy's
connection log (ms from spawn) follows it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench.measure import check_run
from bench.world import PROFILE, World, hosts_for

_PROFILE_MAIN = """
import sys
from pyinstrument import Profiler
profiler = Profiler(interval={interval})
profiler.start()
from runas_async.cli import main as cli
code = cli.main(sys.argv[1:])
profiler.stop()
with open({out!r}, "w", encoding="utf-8") as f:
    f.write(profiler.output_text(unicode=False, color=False))
sys.exit(code)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--n", type=int, default=20, help="registries (20)")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="one-way delay (50)")
    parser.add_argument("--interval", type=float, default=0.001, help="sampling interval (s)")
    args = parser.parse_args(argv)
    hosts = hosts_for(args.n)
    with World(args.delay_ms / 1000, args.n) as world:
        out = world.sandbox.workdir / "profile.txt"
        # runas-async's console script ends with os._exit() (no interpreter teardown), so
        # pyinstrument's own -m runner would never write its report: profile main() instead.
        script = _PROFILE_MAIN.format(interval=args.interval, out=str(out))
        argv_ = [sys.executable, "-c", script, "ecr", "login", PROFILE, *hosts]
        world.run(argv_)  # warm the page cache
        run = world.run(argv_)
        check_run(world, run, hosts, "runas-async under pyinstrument")
        sys.stdout.write(out.read_text(encoding="utf-8"))
        sys.stdout.write(f"\nwall {run.seconds * 1000:.0f} ms; proxy connection log:\n")
        for event in run.events:
            sys.stdout.write(
                f"{(event.time - run.started) * 1000:8.1f} ms  {event.kind:<5} {event.name}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
