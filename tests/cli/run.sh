#!/bin/bash
# The tools' command lines, alike (tools/common/tool_cli.h): --version says
# the release of dkms.conf; a bad command line or setting is one line on
# stderr, exit code 2, found before anything is opened (so here, on a host
# without dblock.ko, no tool ever gets to the module).
#   run.sh BINDIR TOPDIR
set -uo pipefail
bin=$1 top=$2
release=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# expect RC PATTERN CMD...: CMD exits RC with exactly one line of output
# (stdout and stderr) that contains PATTERN.
expect() {
  local rc=$1 pattern=$2 out got=0
  shift 2
  out=$("$@" 2>&1) || got=$?
  echo "$* -> $got: $out"
  [[ $got == "$rc" ]] || fail "$*: exit code $got, not $rc"
  [[ $(wc -l <<<"$out") == 1 ]] || fail "$*: more than one line"
  [[ $out == *"$pattern"* ]] || fail "$*: no '$pattern' in the output"
}

for tool in dblockctl dblock-serve dblock_sample_ramdisk; do
  expect 0 "$tool (dblock) $release" "$bin/$tool" --version
  expect 2 "(see $tool --help)" "$bin/$tool" --no-such-option
done
[[ -n $release ]] || fail "no PACKAGE_VERSION in dkms.conf"
for page in "$top"/docs/man/*.8; do
  grep -q "^\.TH .* \"dblock $release\" " "$page" || fail "$page: its .TH line does not say dblock $release"
done

expect 2 "unknown command 'frobnicate': use version, list" "$bin/dblockctl" frobnicate
expect 2 "no command: use version, list" "$bin/dblockctl" --json
expect 2 "unknown option '--no-such-option'" "$bin/dblockctl" --no-such-option list
expect 2 "The following argument was not expected: --no-such-option" \
  "$bin/dblockctl" list --no-such-option
expect 2 "unknown column 'Bogus' (columns: ID, NAME, SIZE," "$bin/dblockctl" list -o NAME,Bogus
expect 2 "BACKEND)" "$bin/dblockctl" list --output +bogus
expect 2 "empty column name" "$bin/dblockctl" list -n -r -o NAME,
expect 2 "invalid size '2Q'" "$bin/dblockctl" resize vol1 2Q
expect 2 "duration '30' has no unit: write 30s for seconds or 30ms" \
  "$bin/dblockctl" set vol1 --timeout 30
expect 2 "--grace goes with --recovery" "$bin/dblockctl" set vol1 --grace 60s
expect 2 "nothing to set" "$bin/dblockctl" set vol1
expect 2 "device id 99999999999 is out of range" "$bin/dblockctl" info 99999999999
expect 2 "invalid size '1X'" "$bin/dblockctl" create vol1 --size 1X
expect 2 "duration '30' has no unit" "$bin/dblock-serve" vol1 --backend ram --size 1G --timeout 30
expect 2 "not one of ram, null, file:PATH" "$bin/dblock-serve" vol1 --backend disk --size 1M
expect 2 "needs a size" "$bin/dblock-serve" vol1 --backend ram
expect 2 "--create-or-attach with the ram backend would serve zeros" \
  "$bin/dblock-serve" vol1 --backend ram --size 1G --create-or-attach
expect 2 "--attach excludes --create-or-attach" \
  "$bin/dblock-serve" vol1 --backend file:/nonexistent --attach --create-or-attach
expect 2 "invalid size '3X'" "$bin/dblock_sample_ramdisk" --size 3X
expect 2 "NAME excludes --name" "$bin/dblock_sample_ramdisk" vol1 --name vol2
expect 2 "invalid size '3X'" "$bin/dblock_sample_ramdisk" -d --size 3X
expect 2 "--max-io 8G is too large" "$bin/dblock_sample_ramdisk" --max-io 8G
expect 2 "--block-size 5G is too large" "$bin/dblockctl" create vol1 --size 1G --block-size 5G
if [[ -x $bin/dblock_example_xor ]]; then
  expect 2 "key 'abc' is not a number from 1 to 255" "$bin/dblock_example_xor" vol1 /nonexistent abc
  expect 2 "key '0' is not a number from 1 to 255" "$bin/dblock_example_xor" vol1 /nonexistent 0
else
  fail "no $bin/dblock_example_xor"
fi

((failed == 0)) || { echo "$failed failed"; exit 1; }
echo "all command lines as expected"
