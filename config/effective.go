package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Setting is one variable's effective value.
type Setting struct {
	Name   string // full name, e.g. FLOWSHIELD_WINDOW
	Value  string
	Source string // "default", "environment" or "file NAME"
}

// Effective lists every variable with its effective value, in the order of
// the contract, secrets redacted (URLs keep their scheme and host). A
// *_FILE variable is not listed: it is the Source of the variable it gives.
func (c Configuration) Effective() []Setting {
	return c.settings(func(Setting) bool { return true }, true)
}

// Environment is the configuration as the variables that give it again:
// those not at their default, secrets in clear and *_FILE twins resolved,
// for a place that cannot read the files (the envs of a container).
func (c Configuration) Environment() []Setting {
	return c.settings(func(s Setting) bool { return s.Source != "default" }, false)
}

func (c Configuration) settings(keep func(Setting) bool, redact bool) []Setting {
	e := reflect.ValueOf(environment{Configuration: c})
	var out []Setting
	for _, v := range variables {
		if v.FileOf != "" {
			continue
		}
		s := Setting{Name: EnvPrefix + v.Name, Value: formatValue(e.FieldByIndex(v.index)), Source: c.sources[v.Name]}
		if s.Source == "" {
			s.Source = "default"
		}
		if v.Secret && redact {
			s.Value = redactSecret(v.Name, s.Value)
		}
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// WriteEffective prints Effective for `flowshield check`: NAME=VALUE lines,
// those not at their default followed by where they came from.
func (c Configuration) WriteEffective(w io.Writer) error {
	for _, s := range c.Effective() {
		var err error
		if s.Source == "default" {
			_, err = fmt.Fprintf(w, "%s=%s\n", s.Name, s.Value)
		} else {
			_, err = fmt.Fprintf(w, "%s=%s  # from %s\n", s.Name, s.Value, s.Source)
		}
		if err != nil {
			return fmt.Errorf("writing the effective settings: %w", err)
		}
	}
	return nil
}

// formatValue writes a field back in the form its variable takes.
func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return shortDuration(x)
	case slog.Level:
		return strings.ToLower(x.String())
	}
	if v.Kind() == reflect.Slice {
		s := make([]string, v.Len())
		for i := range s {
			s[i] = formatValue(v.Index(i))
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprint(v.Interface())
}

// shortDuration prints 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// redactSecret hides a secret's value; a URL keeps its scheme and host.
func redactSecret(name, value string) string {
	if strings.HasSuffix(name, "_URL") {
		return redactURL(strings.TrimSpace(value))
	}
	if value == "" {
		return ""
	}
	return redacted
}

// redactURL keeps scheme and host of a URL (enough to see where it points)
// and hides user info, path and query, where webhook tokens live.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return redacted
	}
	return u.Scheme + "://" + u.Host + "/" + redacted
}
