//go:build !unix

package collector

func processCPU() int64 { return 0 }
