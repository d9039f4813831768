#!/bin/sh
# Runs a TypeScript file: compile.cjs transpiles it to /tmp/sluice-ts, then node runs the result
# in place of this shell (same pid, so signals and the exit status are the program's own).
#   run.sh FILE.ts [node options…]
# The compiler's node gets no NODE_OPTIONS: V8 refuses the code cache under other V8 flags.
src=$1
shift
out=$(NODE_OPTIONS= /usr/bin/node /opt/sluice/typescript/compile.cjs "$src") || exit $?
exec /usr/bin/node --enable-source-maps "$@" "$out"
