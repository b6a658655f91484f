package config

import (
	"reflect"
	"sort"
	"strings"

	"github.com/caarlos0/env/v11"
)

// variable is one FLOWSHIELD_* variable as the tags of Configuration (and
// of files, for the *_FILE twins) declare it.
type variable struct {
	Name     string // without the prefix
	Default  string
	Expected string // the form a problem names when the parser names none
	// Secret variables are never printed: every *_PASSWORD, *_TOKEN and
	// *_URL (the contract's rule, which also gives each a *_FILE twin).
	Secret bool
	// FileOf is, for a *_FILE variable, the variable its file gives.
	FileOf string
	// Beyond the contract (tag contract:"beyond"): flowshield's own.
	Beyond bool

	field string // the Go field, which env's ParseError names
	index []int  // the field in environment
}

// files are the *_FILE variables, which env reads the file of (the field
// holds the file's content): each secret's twin holds its value,
// NETWORKS_FILE a networks_list.
type files struct {
	NetworksFile         string `env:"NETWORKS_FILE,file"`
	RouterOSPasswordFile string `env:"ROUTEROS_PASSWORD_FILE,file"`
	WebhookURLFile       string `env:"WEBHOOK_URL_FILE,file"`
	SlackWebhookURLFile  string `env:"SLACK_WEBHOOK_URL_FILE,file"`
	MetricsPushURLFile   string `env:"METRICS_PUSH_URL_FILE,file"`
	APITokenFile         string `env:"API_TOKEN_FILE,file"`
}

// environment is what env parses: the Configuration and the files.
type environment struct {
	Configuration
	Files files
}

// isSecret is the contract's rule.
func isSecret(name string) bool {
	return strings.HasSuffix(name, "_PASSWORD") || strings.HasSuffix(name, "_TOKEN") || strings.HasSuffix(name, "_URL")
}

// variables lists every variable, in the contract's order, each *_FILE
// twin right after the variable it gives; variableNamed finds one by name
// (without prefix), variableOfField by its Go field's name, as env's
// ParseError names it (the field names are unique: a test checks).
var variables, variableNamed, variableOfField = listVariables()

func listVariables() ([]variable, map[string]variable, map[string]variable) {
	params, err := env.GetFieldParams(&environment{})
	if err != nil {
		panic("config: the tags of Configuration: " + err.Error())
	}
	fields := taggedFields(reflect.TypeFor[environment](), nil)
	if len(fields) != len(params) {
		panic("config: env and the tags disagree on the variables")
	}
	var main, twins []variable
	for i, p := range params {
		f := fields[i]
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != p.OwnKey {
			panic("config: env reads " + p.OwnKey + " where the tags say " + name)
		}
		v := variable{
			Name: p.OwnKey, Default: p.DefaultValue, Expected: f.Tag.Get("expect"),
			Secret: isSecret(p.OwnKey), Beyond: f.Tag.Get("contract") == "beyond",
			field: f.Name, index: f.Index,
		}
		if strings.HasPrefix(v.Name, "THRESHOLD_") {
			v.Expected = rateForm(strings.HasSuffix(v.Name, "_MBPS"))
		}
		if p.LoadFile {
			v.FileOf = strings.TrimSuffix(v.Name, "_FILE")
			twins = append(twins, v)
			continue
		}
		main = append(main, v)
	}
	out := make([]variable, 0, len(params))
	for _, v := range main {
		out = append(out, v)
		for _, t := range twins {
			if t.FileOf == v.Name {
				out = append(out, t)
			}
		}
	}
	if len(out) != len(params) {
		panic("config: a *_FILE variable gives no variable")
	}
	named, ofField := map[string]variable{}, map[string]variable{}
	for _, v := range out {
		named[v.Name], ofField[v.field] = v, v
	}
	return out, named, ofField
}

// taggedFields are the fields of t (and of its nested structs) that carry
// an env tag, in the order env visits them; their Index is from the top.
func taggedFields(t reflect.Type, index []int) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		f.Index = append(append([]int(nil), index...), i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		switch {
		case name == "-":
		case name != "":
			out = append(out, f)
		case f.Type.Kind() == reflect.Struct && f.IsExported():
			out = append(out, taggedFields(f.Type, f.Index)...)
		}
	}
	return out
}

// formOf is the form a variable's problems name.
func formOf(name string) string { return variableNamed[name].Expected }

// unknownVariables lists FLOWSHIELD_* variables no field reads, likely typos.
func unknownVariables(environ map[string]string) []string {
	known := variableNamed
	var out []string
	for name := range environ {
		rest, ok := strings.CutPrefix(name, EnvPrefix)
		if _, isKnown := known[rest]; !ok || isKnown {
			continue
		}
		out = append(out, "unknown variable "+name+" is ignored")
	}
	sort.Strings(out)
	return out
}
