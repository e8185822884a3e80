#!/bin/bash
# The userspace with the toolchains besides the host's g++ (which scripts/test-all.sh
# builds with): every target with -Werror and the unit tests, for each of
#   sid-g++     Debian sid's g++ (16 today), fmt, GoogleTest (vm/sid-root.sh)
#   sid-clang++ Debian sid's clang with the same libraries
#   clang++     the host's clang (Debian 12's)
# Prints a PASS/FAIL line per toolchain and "toolchains: N passed, N failed".
# Usage: scripts/check-toolchains.sh [NAME...]   (default: all three)
# Build trees: build-<name>/ in the checkout. Release, shared tools: the warnings of an
# optimised build, without the static links that only the guests need.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0

# check NAME RUNNER... : configure, build and ctest with the runner's compiler.
check() {
	local name=$1 dir=$top/build-$1 log
	shift
	log=$(mktemp)
	local start=$SECONDS
	if "$@" cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
		-DDBLOCK_STATIC_TOOLS=OFF >"$log" 2>&1 &&
		"$@" cmake --build "$dir" -j "$(nproc)" >>"$log" 2>&1 &&
		"$@" ctest --test-dir "$dir" --output-on-failure >>"$log" 2>&1; then
		echo "PASS $name: $("$@" bash -c "\$CXX --version" | head -n 1)," \
			"$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1) ($((SECONDS - start))s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name ($((SECONDS - start))s):"
		grep -E 'error:|warning:|Failed|\*\*\*' "$log" | head -n 40 | sed 's/^/    /'
		failed=$((failed + 1))
	fi
	rm -f "$log"
}

(($#)) || set -- sid-g++ sid-clang++ clang++
for name in "$@"; do
	case $name in
	sid-g++) check "$name" "$top/vm/sid-root.sh" run -- env CXX=g++ ;;
	sid-clang++) check "$name" "$top/vm/sid-root.sh" run -- env CXX=clang++ ;;
	clang++) check "$name" env CXX=clang++ ;;
	*)
		echo "check-toolchains: unknown toolchain '$name' (sid-g++, sid-clang++, clang++)" >&2
		exit 2
		;;
	esac
done
echo "toolchains: $passed passed, $failed failed"
[ "$failed" = 0 ]
