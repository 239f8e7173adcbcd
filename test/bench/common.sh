# test/bench/common.sh - what test/bench/migrate and test/bench/references
# share: rounds, CPU and load accounting, medians and the result tables
#
# Sourced (not executed), after test/lib.sh.  It provides:
#
#   bench_positive NAME VALUE  check that a setting is a positive integer
#   bench_run CMD ARGS...      one of the server's client programs (psql,
#                              pg_dump, pgbench, createdb), connected as the
#                              role postgres to the throwaway cluster
#   bench_psql DB ARGS...      psql into database DB, stopping at the first
#                              error
#   bench_val DB SQL           one value from a query
#   bench_measure CMD...       run CMD; sets b_wall, b_client, b_server and
#                              b_other (seconds, see below)
#   bench_record KEY ROUND     store the last measurement as KEY's ROUND
#   bench_load                 the load averages (1, 5, 15 min)
#   bench_round_start/_end R   print round R's load before and after
#   bench_report TITLE BASE KEY:LABEL...
#                              a table per method: medians over the rounds
#                              and the ratios to method BASE
#   bench_machine WHEN         print the machine: CPU, cores, memory, and the
#                              load now (WHEN: "at the start", "at the end")
#
# How the CPU seconds are counted (bench_measure).  Every process the
# benchmark starts is a descendant of this script or of the cluster's
# postmaster, and each waits for its children, so a process's CPU time ends
# up, once it has exited, in its parent's cutime and cstime
# (/proc/PID/stat fields 16 and 17):
#
#   client  this script's own utime + stime + cutime + cstime: the psql,
#           pg_dump and pgbench processes it ran, once they have exited.  A measurement may exclude the CPU of a helper
#           of the benchmark itself (bench_exclude_ticks: the memory sampler)
#   server  the postmaster's utime + stime + cutime + cstime plus those of
#           every child alive at the time (backends, background workers
#           such as splitdb's worker and its copiers, the checkpointer,
#           the WAL writer): every backend of the cluster, the sibling
#           databases' included, whether it exited during the measurement
#           or not
#   other   what the rest of the machine used meanwhile (/proc/stat minus
#           the two above): more than a little and the wall times are skewed
#
# Each is the difference between the values before and after CMD.

# shellcheck shell=bash disable=SC2034
# (SC2034: the arrays are read by name, through namerefs)

# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

export LC_ALL=C

bench_hz=$(getconf CLK_TCK)
bench_exclude_ticks=0

# Per "KEY/ROUND": wall, client, server and other seconds of a measurement,
# and the round's order of keys (to compute ratios within a round).
declare -A bench_wall bench_client bench_server bench_other
declare -a bench_keys=()

bench_positive()
{
	if ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
		splitdb_error "$1 must be a positive integer, not \"$2\""
		return 1
	fi
}

# The clients run as this script's user, not through runuser as
# splitdb_as_postgres does: runuser costs about 25 ms of CPU and up to a
# quarter of a second of wall time at each start, which would be counted
# against the method.  The cluster trusts local connections.
bench_run()
{
	local cmd=$1

	shift
	PGUSER=postgres "$SPLITDB_BINDIR/$cmd" "$@"
}

bench_psql()
{
	local db=$1

	shift
	bench_run psql -X -q -v ON_ERROR_STOP=1 -P pager=off -d "$db" "$@"
}

bench_val()
{
	bench_psql "$1" -At -c "$2"
}

# Arithmetic on decimals; $2 digits after the point (default 2).
calc()
{
	awk "BEGIN { printf \"%.${2:-2}f\", $1 }"
}

# Succeeds when the awk condition $1 holds.
holds()
{
	awk "BEGIN { exit !($1) }"
}

# The median of the arguments (numbers), or "-" when there are none.
bench_median()
{
	printf '%s\n' "$@" | grep -v '^$' | sort -g |
		awk '{ v[NR] = $1 }
			 END { if (NR == 0) print "-";
				   else if (NR % 2) print v[(NR + 1) / 2];
				   else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_load()
{
	cut -d' ' -f1-3 /proc/loadavg
}

# Clock ticks of the whole machine so far (user, nice, system, irq,
# softirq; not idle, iowait or steal).
bench_cpu_machine()
{
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat
}

# _bench_ticks PID: set bench_ticks to the clock ticks of process PID and
# of the children it has reaped (0 when it is gone).  Runs no other
# process, so that reading this script's own ticks costs none.
_bench_ticks()
{
	local stat
	local -a f

	bench_ticks=0
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
	# after "(comm) ": state is field 0, utime 11, stime 12, cutime 13,
	# cstime 14
	read -ra f <<<"${stat##*) }"
	bench_ticks=$((f[11] + f[12] + f[13] + f[14]))
}

# Clock ticks of the cluster: the postmaster with what it reaped, and its
# children alive now.  A child reaped while the others are read would be
# missed or counted twice: then read again.
bench_cpu_cluster()
{
	local pm before after children pid attempt

	pm=$(head -n 1 "$SPLITDB_PGDATA/postmaster.pid")
	for attempt in 1 2 3 4 5 6 7 8; do
		_bench_ticks "$pm"
		before=$bench_ticks
		children=0
		for pid in $(pgrep -P "$pm"); do
			_bench_ticks "$pid"
			children=$((children + bench_ticks))
		done
		_bench_ticks "$pm"
		after=$bench_ticks
		[ "$before" = "$after" ] && break
	done
	echo $((after + children))
}

# bench_measure CMD ARGS...: run CMD in this shell and set b_wall (its wall
# seconds), b_client, b_server and b_other (CPU seconds meanwhile; see the
# top of this file).  Returns CMD's status.
bench_measure()
{
	local t0 t1 rc m0 m1 s0 s1 c0 c1

	bench_exclude_ticks=0
	m0=$(bench_cpu_machine)
	s0=$(bench_cpu_cluster)
	# this script's own ticks are read last before and first after
	_bench_ticks $$
	c0=$bench_ticks
	t0=$EPOCHREALTIME
	"$@"
	rc=$?
	t1=$EPOCHREALTIME
	_bench_ticks $$
	c1=$bench_ticks
	s1=$(bench_cpu_cluster)
	m1=$(bench_cpu_machine)
	b_wall=$(calc "$t1 - $t0" 3)
	b_client=$(calc "($c1 - $c0 - $bench_exclude_ticks) / $bench_hz")
	b_server=$(calc "($s1 - $s0) / $bench_hz")
	b_other=$(calc "(($m1 - $m0) - ($c1 - $c0) - ($s1 - $s0)) / $bench_hz" 1)
	bench_exclude_ticks=0
	return $rc
}

# bench_record KEY ROUND: store the last bench_measure as KEY's round, and
# print it.
bench_record()
{
	local k=$1/$2

	bench_wall[$k]=$b_wall
	bench_client[$k]=$b_client
	bench_server[$k]=$b_server
	bench_other[$k]=$b_other
	[[ " ${bench_keys[*]} " == *" $1 "* ]] || bench_keys+=("$1")
	printf '    %-34s %8s s wall, cpu %6s s client + %6s s server, %5s s other\n' \
		"$1" "$b_wall" "$b_client" "$b_server" "$b_other"
}

bench_round_start()
{
	echo "  round $1 of $bench_rounds: load before $(bench_load)"
}

bench_round_end()
{
	echo "  round $1 of $bench_rounds: load after  $(bench_load)"
}

# _bench_values ARRAY KEY: KEY's value in each round.
_bench_values()
{
	local -n arr=$1
	local r

	for ((r = 1; r <= bench_rounds; r++)); do
		echo "${arr[$2/$r]:-}"
	done
}

# _bench_ratios ARRAY KEY BASE: KEY / BASE in each round where both ran.
_bench_ratios()
{
	local -n arr=$1
	local r a b

	for ((r = 1; r <= bench_rounds; r++)); do
		a=${arr[$2/$r]:-} b=${arr[$3/$r]:-}
		if [ -n "$a" ] && [ -n "$b" ] && holds "$b > 0"; then
			calc "$a / $b" 3
			echo
		fi
	done
}

# The CPU seconds (client + server) of a measurement, per round.
_bench_cpu_total()
{
	local r k

	for ((r = 1; r <= bench_rounds; r++)); do
		k=$1/$r
		if [ -n "${bench_client[$k]:-}" ]; then
			calc "${bench_client[$k]} + ${bench_server[$k]}"
			echo
		fi
	done
}

# bench_report TITLE BASE KEY:LABEL...: one line per method, with the
# medians over the rounds of its wall seconds, its CPU seconds (client,
# server, both) and the other CPU seconds of the machine, and the medians
# of the ratios, round by round, of its wall and CPU seconds to those of
# method BASE.
bench_report()
{
	local title=$1 base=$2 item key label r
	local -A total=()

	shift 2
	for item in "$@"; do
		key=${item%%:*}
		for ((r = 1; r <= bench_rounds; r++)); do
			[ -n "${bench_client[$key/$r]:-}" ] &&
				total[$key/$r]=$(calc "${bench_client[$key/$r]} + ${bench_server[$key/$r]}")
		done
	done
	echo
	echo "$title"
	echo "(medians of $bench_rounds alternated rounds; ratios: the median of the ratios"
	echo " to \"$base\" round by round)"
	echo
	printf '  %-40s %8s %8s %8s %8s %7s %9s %8s\n' method "wall s" "client" "server" \
		"cpu s" "other" "wall/base" "cpu/base"
	for item in "$@"; do
		key=${item%%:*} label=${item#*:}
		# shellcheck disable=SC2046
		printf '  %-40s %8s %8s %8s %8s %7s %9s %8s\n' "$label" \
			"$(bench_median $(_bench_values bench_wall "$key"))" \
			"$(bench_median $(_bench_values bench_client "$key"))" \
			"$(bench_median $(_bench_values bench_server "$key"))" \
			"$(bench_median $(_bench_values total "$key"))" \
			"$(bench_median $(_bench_values bench_other "$key"))" \
			"$(bench_median $(_bench_ratios bench_wall "$key" "$base"))" \
			"$(bench_median $(_bench_ratios total "$key" "$base"))"
	done
}

# What the figures were taken on.
bench_machine()
{
	echo "CPU:     $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "cores:   $(nproc) (nproc)"
	echo "memory:  $(awk '/^MemTotal:/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)"
	echo "load:    $(bench_load) (1, 5, 15 min) $1"
	echo "rounds:  $bench_rounds, the methods alternated in each"
}

# The rounds, from SPLITDB_BENCH_ROUNDS: at least 3, so that a median means
# something.
bench_rounds=${SPLITDB_BENCH_ROUNDS:-3}
bench_positive SPLITDB_BENCH_ROUNDS "$bench_rounds" || exit 1
if [ "$bench_rounds" -lt 3 ]; then
	splitdb_error "SPLITDB_BENCH_ROUNDS must be at least 3: every figure is a median of alternated rounds"
	exit 1
fi
