/container/config/set tmpdir="{{outer tmpdir}}"
