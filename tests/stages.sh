# Stage timer shared by .ci/run and tests/run-all.sh (sourced, not run).
#
#   stage NAME COMMAND...   runs COMMAND, records how long it took under NAME, returns its
#                           status
#   stage_report            prints every recorded stage with its seconds and share
#
# The records go to $ROMLIB_STAGES (a file): .ci/run sets it so that tests/run-all.sh adds
# its stages to the same table; standalone, run-all.sh makes its own. The report is printed
# at the end of a run, a failed one included, so a slow or failing stage is named.
stage() {
    local name=$1 t=$SECONDS status=0
    shift
    printf '\n== %s: %s\n' "$name" "$*"
    "$@" || status=$?
    printf '%s\t%s\t%s\n' "$name" "$((SECONDS - t))" "$status" >>"$ROMLIB_STAGES"
    return "$status"
}

stage_report() {
    [[ -s $ROMLIB_STAGES ]] || return 0
    echo
    echo "== time per stage (s)"
    awk -F'\t' '
        { name[NR] = $1; secs[NR] = $2; status[NR] = $3; total += $2 }
        END {
            for (i = 1; i <= NR; i++)
                printf "  %-44s %6d  %3d%%%s\n", name[i], secs[i], total ? 100 * secs[i] / total : 0,
                    status[i] == 0 ? "" : "  FAILED (exit " status[i] ")"
            printf "  %-44s %6d\n", "total", total
        }' "$ROMLIB_STAGES"
}
