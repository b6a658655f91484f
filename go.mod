module github.com/flowshield/flowshield

go 1.26.0

require (
	github.com/VictoriaMetrics/metrics v1.44.0 // indirect
	github.com/caarlos0/env/v11 v11.4.2 // indirect
	github.com/go-routeros/routeros/v3 v3.0.1 // indirect
	github.com/google/go-containerregistry v0.20.6 // indirect
	github.com/netsampler/goflow2/v2 v2.2.6 // indirect
	github.com/valyala/fastrand v1.1.0 // indirect
	github.com/valyala/histogram v1.2.0 // indirect
	go.etcd.io/bbolt v1.4.3 // indirect
	golang.org/x/sys v0.38.0 // indirect
)
