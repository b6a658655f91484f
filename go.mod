module github.com/flowshield/flowshield

go 1.26.0

require (
	github.com/VictoriaMetrics/metrics v1.44.0
	github.com/caarlos0/env/v11 v11.4.2
	github.com/go-routeros/routeros/v3 v3.0.1
	github.com/google/go-containerregistry v0.20.6
	github.com/netsampler/goflow2/v2 v2.2.6
	go.etcd.io/bbolt v1.4.3
	golang.org/x/sys v0.38.0
)

require (
	github.com/containerd/stargz-snapshotter/estargz v0.16.3 // indirect
	github.com/klauspost/compress v1.18.0 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	github.com/valyala/fastrand v1.1.0 // indirect
	github.com/valyala/histogram v1.2.0 // indirect
	github.com/vbatts/tar-split v0.12.1 // indirect
	golang.org/x/sync v0.15.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
