module github.com/flowshield/flowshield

go 1.26.0

require (
	github.com/VictoriaMetrics/metrics v1.44.0
	github.com/caarlos0/env/v11 v11.4.2
	github.com/go-routeros/routeros/v3 v3.0.1
	github.com/netsampler/goflow2/v2 v2.2.6
	go.etcd.io/bbolt v1.4.3
	golang.org/x/sys v0.38.0
)

require (
	github.com/valyala/fastrand v1.1.0 // indirect
	github.com/valyala/histogram v1.2.0 // indirect
	golang.org/x/sync v0.15.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
