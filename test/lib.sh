# test/lib.sh - shared set-up for test/run and test/demo/run
#
# Sourced (not executed) by the scripts behind `make test` and `make demo`.
# It provides:
#
#   splitdb_install_packages   install the Debian packages the suites need
#                              (only those missing; SPLITDB_SKIP_INSTALL=1
#                              skips the check)
#   splitdb_build_install      make PG_CFLAGS=-Werror && make install, as root,
#                              in the top directory of the checkout
#   splitdb_start_cluster      initdb and start a throwaway cluster in a
#                              temporary directory, on a free port, run by the
#                              OS user postgres; exports PGHOST, PGPORT, PGUSER
#   splitdb_mktemp_var VAR NAME
#                              create a temporary directory owned by postgres,
#                              removed at exit, and store its path in VAR
#   splitdb_as_postgres CMD    run CMD as the OS user postgres, with the
#                              cluster's connection settings and the server's
#                              bindir first in PATH
#
# An EXIT trap stops the cluster started here (by its data directory, in
# immediate mode; no other cluster is ever touched) and removes every
# temporary directory.  With KEEP_TMP=1 the directories are kept and their
# paths printed.
#
# Every function returns non-zero on failure and says why on stderr; the
# caller decides whether to stop.  Settings that the caller may override:
# PG_CONFIG (default pg_config), KEEP_TMP, SPLITDB_SKIP_INSTALL.

# Top directory of the checkout: the parent of the directory holding this file.
SPLITDB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}

# Filled in by splitdb_pg_paths once the server packages are installed:
# the server's programs and the PGXS tree (pg_regress, the TAP modules).
SPLITDB_BINDIR=
SPLITDB_PGXS=

# Filled in by splitdb_start_cluster.
SPLITDB_CLUSTER_DIR=
SPLITDB_PGDATA=

# Temporary directories to remove at exit.
_splitdb_tmpdirs=()

# Connection settings from the caller's environment must not leak into the
# throwaway cluster's clients.
unset PGDATABASE PGSERVICE PGSERVICEFILE PGOPTIONS PGPASSFILE PGHOSTADDR \
	PGSSLMODE PGTARGETSESSIONATTRS

splitdb_note()
{
	echo "splitdb: $*"
}

splitdb_error()
{
	echo "splitdb: error: $*" >&2
}

# Install the packages the build and the suites need, when any is missing.
splitdb_install_packages()
{
	local pkg missing=()

	if [ "${SPLITDB_SKIP_INSTALL:-0}" = 1 ]; then
		splitdb_note "packages: check skipped (SPLITDB_SKIP_INSTALL=1)"
		return 0
	fi
	for pkg in build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap \
		pgtap libipc-run-perl graphviz; do
		if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null |
			grep -q '^install ok installed$'; then
			missing+=("$pkg")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		splitdb_note "packages: all present"
		return 0
	fi
	splitdb_note "packages: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		splitdb_error "installing packages needs root"
		return 1
	fi
	apt-get update -qq >/dev/null || {
		splitdb_error "apt-get update failed"
		return 1
	}
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
		>/dev/null || {
		splitdb_error "apt-get install ${missing[*]} failed"
		return 1
	}
}

# Locate the server's programs and the PGXS tree.
splitdb_pg_paths()
{
	local pkglibdir

	if ! SPLITDB_BINDIR=$("$PG_CONFIG" --bindir) ||
		! pkglibdir=$("$PG_CONFIG" --pkglibdir); then
		splitdb_error "$PG_CONFIG failed; is postgresql-server-dev-15 installed?"
		return 1
	fi
	# shellcheck disable=SC2034
	SPLITDB_PGXS=$pkglibdir/pgxs
	if [ ! -x "$SPLITDB_BINDIR/initdb" ]; then
		splitdb_error "no initdb in $SPLITDB_BINDIR"
		return 1
	fi
}

# Build with warnings as errors, then install.  Output is shown only when a
# step fails.
splitdb_build_install()
{
	local dir log

	splitdb_mktemp_var dir build || return 1
	log=$dir/build.log
	splitdb_note "build: make PG_CFLAGS=-Werror && make install"
	if ! make -C "$SPLITDB_TOP" --no-print-directory PG_CONFIG="$PG_CONFIG" \
		PG_CFLAGS=-Werror >"$log" 2>&1; then
		splitdb_error "build failed:"
		head -n 200 "$log" >&2
		return 1
	fi
	if ! make -C "$SPLITDB_TOP" --no-print-directory PG_CONFIG="$PG_CONFIG" \
		install >"$log" 2>&1; then
		splitdb_error "make install failed:"
		head -n 200 "$log" >&2
		return 1
	fi
}

# Create a temporary directory owned by postgres, removed at exit, and store
# its path in the variable named $1.  (Not dir=$(...): the directory must be
# registered in this shell, not in a subshell.)
splitdb_mktemp_var()
{
	local _var=$1 _name=${2:-tmp} _dir

	_dir=$(mktemp -d "${TMPDIR:-/tmp}/splitdb-$_name.XXXXXX") || {
		splitdb_error "mktemp failed"
		return 1
	}
	_splitdb_tmpdirs+=("$_dir")
	[ "${KEEP_TMP:-0}" = 1 ] && splitdb_note "keeping $_dir (KEEP_TMP=1)"
	chown postgres: "$_dir" || return 1
	printf -v "$_var" '%s' "$_dir"
}

# Run a command as postgres, against the throwaway cluster.
splitdb_as_postgres()
{
	runuser -u postgres -- env \
		PGHOST="${PGHOST:-}" PGPORT="${PGPORT:-}" PGUSER="${PGUSER:-postgres}" \
		PATH="$SPLITDB_BINDIR:$PATH" "$@"
}

# Succeeds when nothing listens on TCP port $1 and it can be bound on the
# loopback address.
_splitdb_port_free()
{
	local port=$1

	if command -v ss >/dev/null 2>&1 &&
		[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
		return 1
	fi
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
			LocalPort => $ARGV[0], Proto => "tcp", Listen => 1, ReuseAddr => 1)
			or exit 1;
		close $s;' "$port"
}

_splitdb_free_port()
{
	local port tries

	port=$(((RANDOM * 32768 + RANDOM) % 40000 + 20000))
	for ((tries = 0; tries < 200; tries++)); do
		port=$(((port - 20000 + 1) % 40000 + 20000))
		if _splitdb_port_free "$port"; then
			echo "$port"
			return 0
		fi
	done
	splitdb_error "no free TCP port found"
	return 1
}

# Start a throwaway cluster.  Sets SPLITDB_CLUSTER_DIR (socket directory,
# log) and SPLITDB_PGDATA; exports PGHOST, PGPORT and PGUSER.
splitdb_start_cluster()
{
	local port attempt log

	[ -n "$SPLITDB_BINDIR" ] || splitdb_pg_paths || return 1
	splitdb_mktemp_var SPLITDB_CLUSTER_DIR cluster || return 1
	SPLITDB_PGDATA=$SPLITDB_CLUSTER_DIR/data
	log=$SPLITDB_CLUSTER_DIR/log

	if ! runuser -u postgres -- "$SPLITDB_BINDIR/initdb" -D "$SPLITDB_PGDATA" \
		-U postgres -A trust -E UTF8 --locale=C --no-sync \
		>"$SPLITDB_CLUSTER_DIR/initdb.log" 2>&1; then
		splitdb_error "initdb failed:"
		cat "$SPLITDB_CLUSTER_DIR/initdb.log" >&2
		return 1
	fi
	cat >>"$SPLITDB_PGDATA/postgresql.conf" <<-EOF

		# throwaway cluster for splitdb's tests (test/lib.sh)
		unix_socket_directories = '$SPLITDB_CLUSTER_DIR'
		listen_addresses = 'localhost'
		shared_preload_libraries = 'splitdb'
		max_worker_processes = 32
		fsync = off
		log_min_messages = warning
		log_line_prefix = '%m [%p] %q%a '
	EOF

	# Another process may take the port between the check and the start;
	# then try another one.
	for attempt in 1 2 3 4 5; do
		port=$(_splitdb_free_port) || return 1
		echo "port = $port" >>"$SPLITDB_PGDATA/postgresql.conf"
		[ -f "$log" ] && : >"$log"	# only this attempt's messages
		if runuser -u postgres -- "$SPLITDB_BINDIR/pg_ctl" -D "$SPLITDB_PGDATA" \
			-l "$log" -w -t 60 start >/dev/null 2>&1; then
			export PGHOST=$SPLITDB_CLUSTER_DIR PGPORT=$port PGUSER=postgres
			splitdb_note "cluster: started on port $port in $SPLITDB_CLUSTER_DIR"
			return 0
		fi
		# Make sure nothing of this attempt is left running.
		runuser -u postgres -- "$SPLITDB_BINDIR/pg_ctl" -D "$SPLITDB_PGDATA" \
			-m immediate -w stop >/dev/null 2>&1
		if ! grep -q -e 'could not bind' -e 'could not create any TCP/IP sockets' \
			"$log" 2>/dev/null; then
			break
		fi
		splitdb_note "cluster: port $port was taken (attempt $attempt), trying another"
	done
	splitdb_error "the cluster did not start; server log:"
	tail -n 50 "$log" >&2
	return 1
}

# EXIT trap: stop the cluster started above (nothing else) and remove the
# temporary directories.
_splitdb_cleanup()
{
	local rc=$? dir

	trap - EXIT INT TERM HUP
	if [ -n "$SPLITDB_PGDATA" ] && [ -f "$SPLITDB_PGDATA/postmaster.pid" ]; then
		runuser -u postgres -- "$SPLITDB_BINDIR/pg_ctl" -D "$SPLITDB_PGDATA" \
			-m immediate -w stop >/dev/null 2>&1 ||
			splitdb_error "could not stop the cluster in $SPLITDB_PGDATA"
	fi
	for dir in "${_splitdb_tmpdirs[@]}"; do
		[ -d "$dir" ] && [ "${KEEP_TMP:-0}" != 1 ] && rm -rf "$dir"
	done
	exit "$rc"
}

trap _splitdb_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
