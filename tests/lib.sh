# Helpers shared by the shell test suites (sourced). Tests wait for
# conditions, never for a fixed time: wait_until polls with a bound.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds
# or SECONDS of wall time pass (a slow COMMAND does not stretch the bound);
# the status says which.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}
# Is no process of the given pids alive any more?
all_gone() {
    local p
    for p; do kill -0 "$p" 2>/dev/null && return 1; done
    return 0
}
# The newest pid of a dptrain rank (not the launcher) whose command line
# contains PATTERN, once it runs (30 s at most).
rank_pid() { pgrep -f "^[^ ]*dptrain train .*$1" | tail -1; }
rank_pids() { pgrep -f "^[^ ]*dptrain train .*$1"; }
has_rank() { [ -n "$(rank_pid "$1")" ]; }
pid_of() {
    wait_until 30 has_rank "$1"
    rank_pid "$1"
}
# Is there a complete checkpoint (not a temporary file) in DIR?
has_ckpt() { ls "$1" 2>/dev/null | grep -q '^ckpt-.*\.h5$'; }
# Is the lock of checkpoint directory DIR held by a run?
lock_held() { [ -f "$1/.dptrain.lock" ] && ! flock -n "$1/.dptrain.lock" true; }
# Checkpoints of DIR, one name a line, oldest first.
ckpts() { ls "$1" 2>/dev/null | grep '^ckpt-.*\.h5$' | sort; }

# A synthetic dataset: N samples of 20 features, 4 classes, as DIR/d.h5.
make_dataset() {
    local dir=$1 n=${2:-3000}
    awk -v n="$n" 'BEGIN { srand(7); for (i = 0; i < n; i++) { s = 0; line = "";
           for (j = 0; j < 20; j++) { v = rand() * 2 - 1; s += v * (j % 4 - 1.5); line = line sprintf("%.5f,", v) }
           print line (s > 1 ? 3 : s > 0 ? 2 : s > -1 ? 1 : 0) } }' > "$dir/d.csv"
    "$DPTRAIN" convert csv "$dir/d.csv" -o "$dir/d.h5" >/dev/null || { echo "convert failed"; exit 1; }
}

# same_group A.h5 B.h5 GROUP: every dataset under GROUP in A equals (values
# and shape, bitwise) the one at the same path in B, and B has no others.
same_group() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
def sets(f, g):
    out = {}
    f[g].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    da, db = sets(a, sys.argv[3]), sets(b, sys.argv[3])
    same = da.keys() == db.keys() and all(
        da[k].shape == db[k].shape and np.array_equal(da[k], db[k]) for k in da)
sys.exit(0 if same and da else 1)
PY
}
