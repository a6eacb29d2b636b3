# Builds the host binaries a benchmark drives and sets HOST_DIR to their target folder
# (sourced by bench/run.sh, bench/scale.sh and device-runtime/bench/{read,net}.sh, from the
# repository root). ROMLIB_BENCH_HOST_PROFILE=dev takes the dev build (the test suite's, for
# smoke runs in CI, where the figures only show the script works); release otherwise.
#
#   host_bins CARGO_ARGS...   e.g. host_bins -p romlib-host -p romlib-tests --bins
host_bins() {
  case ${ROMLIB_BENCH_HOST_PROFILE:-release} in
    release) cargo build -q --release "$@"; HOST_DIR=release ;;
    dev) cargo build -q "$@"; HOST_DIR=debug ;;
    *) echo "ROMLIB_BENCH_HOST_PROFILE must be release or dev" >&2; exit 2 ;;
  esac
}
