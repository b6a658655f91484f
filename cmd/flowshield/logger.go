package main

import (
	"io"
	"log/slog"

	"github.com/flowshield/flowshield/config"
)

// newLogger is the daemon's logger per LOG_LEVEL and LOG_FORMAT; it also
// becomes slog's default so libraries logging through slog agree.
func newLogger(w io.Writer, level slog.Level, format config.LogFormat) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == config.LogFormatJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	log := slog.New(h)
	slog.SetDefault(log)
	return log
}
