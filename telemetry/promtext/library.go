package promtext

// fix is what WritePrometheus changes in one of the library's own
// families: its name, its type, or both ("" keeps it).
type fix struct{ name, typ string }

// libraryFixes correct the Go and process series of
// github.com/VictoriaMetrics/metrics v1.44.0 that promtool rejects:
// counters named _count (a suffix reserved for histograms and summaries)
// take the _total of counters, and cumulative I/O counters the library
// types as gauges are typed counter.
var libraryFixes = map[string]fix{
	"go_cgo_calls_count":                     {name: "go_cgo_calls_total"},
	"go_gc_forced_count":                     {name: "go_gc_forced_total"},
	"go_cpu_count":                           {name: "go_cpus"},
	"process_io_read_bytes_total":            {typ: "counter"},
	"process_io_written_bytes_total":         {typ: "counter"},
	"process_io_read_syscalls_total":         {typ: "counter"},
	"process_io_write_syscalls_total":        {typ: "counter"},
	"process_io_storage_read_bytes_total":    {typ: "counter"},
	"process_io_storage_written_bytes_total": {typ: "counter"},
}

// The library names these series and documents them nowhere but its
// source; these texts say what its code reads (runtime/metrics,
// runtime.MemStats, /proc/self).
func init() {
	Describe(map[string]string{
		"go_sched_latencies_seconds":          "Time goroutines spent runnable before running (runtime/metrics /sched/latencies:seconds), buckets up to 1 s.",
		"go_mutex_wait_seconds_total":         "Time goroutines spent blocked on a sync.Mutex, sync.RWMutex or runtime mutex.",
		"go_gc_mark_assist_cpu_seconds_total": "CPU time goroutines spent helping the garbage collector mark.",
		"go_gc_cpu_seconds_total":             "CPU time spent in the garbage collector.",
		"go_gc_pauses_seconds":                "Stop-the-world pauses of the garbage collector, buckets up to 1 s.",
		"go_scavenge_cpu_seconds_total":       "CPU time spent returning unused memory to the operating system.",
		"go_memlimit_bytes":                   "The Go runtime's soft memory limit (GOMEMLIMIT).",
		"go_memstats_alloc_bytes":             "Bytes of allocated heap objects.",
		"go_memstats_alloc_bytes_total":       "Bytes allocated for heap objects since start.",
		"go_memstats_buck_hash_sys_bytes":     "Bytes of memory in profiling bucket hash tables.",
		"go_memstats_frees_total":             "Heap objects freed since start.",
		"go_memstats_gc_cpu_fraction":         "Fraction of the CPU time available used by the garbage collector since start.",
		"go_memstats_gc_sys_bytes":            "Bytes of memory in garbage collection metadata.",
		"go_memstats_heap_alloc_bytes":        "Bytes of allocated heap objects.",
		"go_memstats_heap_idle_bytes":         "Bytes in idle (unused) heap spans.",
		"go_memstats_heap_inuse_bytes":        "Bytes in in-use heap spans.",
		"go_memstats_heap_objects":            "Allocated heap objects.",
		"go_memstats_heap_released_bytes":     "Bytes of physical memory returned to the operating system.",
		"go_memstats_heap_sys_bytes":          "Bytes of heap memory obtained from the operating system.",
		"go_memstats_last_gc_time_seconds":    "When the last garbage collection finished, in seconds since the Unix epoch.",
		"go_memstats_lookups_total":           "Pointer lookups by the runtime since start.",
		"go_memstats_mallocs_total":           "Heap objects allocated since start.",
		"go_memstats_mcache_inuse_bytes":      "Bytes of allocated mcache structures.",
		"go_memstats_mcache_sys_bytes":        "Bytes of memory obtained from the operating system for mcache structures.",
		"go_memstats_mspan_inuse_bytes":       "Bytes of allocated mspan structures.",
		"go_memstats_mspan_sys_bytes":         "Bytes of memory obtained from the operating system for mspan structures.",
		"go_memstats_next_gc_bytes":           "Heap size at which the next garbage collection starts.",
		"go_memstats_other_sys_bytes":         "Bytes of memory in miscellaneous off-heap runtime allocations.",
		"go_memstats_stack_inuse_bytes":       "Bytes in stack spans.",
		"go_memstats_stack_sys_bytes":         "Bytes of stack memory obtained from the operating system.",
		"go_memstats_sys_bytes":               "Bytes of memory obtained from the operating system in total.",
		"go_cgo_calls_total":                  "Calls from Go to C since start.",
		"go_cpus":                             "Logical CPUs usable by the process (runtime.NumCPU).",
		"go_gc_duration_seconds":              "Stop-the-world pause of the last 256 garbage collections, as quantiles; sum and count since start.",
		"go_gc_forced_total":                  "Garbage collections forced by the application (runtime.GC) since start.",
		"go_gomaxprocs":                       "GOMAXPROCS: the CPUs that run Go code at once.",
		"go_goroutines":                       "Goroutines that exist now.",
		"go_threads":                          "Operating system threads created by the runtime.",
		"go_info":                             "The Go version the daemon was built with, as a label; always 1.",
		"go_info_ext":                         "The compiler, GOARCH, GOOS and GOROOT the daemon was built with, as labels; always 1.",

		"process_cpu_seconds_system_total":              "CPU time the process spent in the kernel.",
		"process_cpu_seconds_total":                     "CPU time the process spent, user and kernel.",
		"process_cpu_seconds_user_total":                "CPU time the process spent in user space.",
		"process_major_pagefaults_total":                "Page faults that needed disk I/O.",
		"process_minor_pagefaults_total":                "Page faults served without disk I/O.",
		"process_num_threads":                           "Operating system threads of the process.",
		"process_resident_memory_bytes":                 "Resident memory (RSS) of the process.",
		"process_start_time_seconds":                    "When the process started, in seconds since the Unix epoch.",
		"process_virtual_memory_bytes":                  "Virtual memory size of the process.",
		"process_virtual_memory_peak_bytes":             "Peak virtual memory size of the process.",
		"process_resident_memory_peak_bytes":            "Peak resident memory (RSS) of the process.",
		"process_resident_memory_anon_bytes":            "Resident anonymous memory of the process (its heap and stacks).",
		"process_resident_memory_file_bytes":            "Resident file-backed memory of the process.",
		"process_resident_memory_shared_bytes":          "Resident shared memory of the process.",
		"process_io_read_bytes_total":                   "Bytes the process read through read-like system calls.",
		"process_io_written_bytes_total":                "Bytes the process wrote through write-like system calls.",
		"process_io_read_syscalls_total":                "Read-like system calls of the process.",
		"process_io_write_syscalls_total":               "Write-like system calls of the process.",
		"process_io_storage_read_bytes_total":           "Bytes the process caused to be read from storage.",
		"process_io_storage_written_bytes_total":        "Bytes the process caused to be written to storage.",
		"process_pressure_cpu_waiting_seconds_total":    "Time some of the process's tasks waited for a CPU since start (pressure stall information of its cgroup).",
		"process_pressure_cpu_stalled_seconds_total":    "Time all of the process's tasks waited for a CPU since start (pressure stall information of its cgroup).",
		"process_pressure_io_waiting_seconds_total":     "Time some of the process's tasks waited for I/O since start (pressure stall information of its cgroup).",
		"process_pressure_io_stalled_seconds_total":     "Time all of the process's tasks waited for I/O since start (pressure stall information of its cgroup).",
		"process_pressure_memory_waiting_seconds_total": "Time some of the process's tasks waited for memory since start (pressure stall information of its cgroup).",
		"process_pressure_memory_stalled_seconds_total": "Time all of the process's tasks waited for memory since start (pressure stall information of its cgroup).",
		"process_max_fds":                               "The process's limit of open file descriptors.",
		"process_open_fds":                              "File descriptors the process has open.",
	})
}
