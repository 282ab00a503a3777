# Runs one case: sh /e7/run-case.sh NAME. Exit 0 when the case recorded no failure.
. /e7/lib.sh
for _f in /e7/cases/*.sh; do . "$_f"; done
cd /tmp || exit 2
"case_$1"
echo "-- $1: $FAILS failure(s)"
[ "$FAILS" = 0 ]
