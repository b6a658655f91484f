package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

// TestVariableList: the list is what env reads, and follows the contract's
// rules for secrets and their *_FILE twins.
func TestVariableList(t *testing.T) {
	params, err := env.GetFieldParams(&environment{})
	if err != nil {
		t.Fatal(err)
	}
	envDefaults := map[string]string{}
	for _, p := range params {
		envDefaults[p.OwnKey] = p.DefaultValue
	}
	vars := variables
	if len(vars) != len(params) {
		t.Errorf("%d variables listed, env reads %d", len(vars), len(params))
	}
	fields := map[string]bool{}
	for _, v := range vars {
		if def, ok := envDefaults[v.Name]; !ok || def != v.Default {
			t.Errorf("%s: default %q, env's %q (read: %v)", v.Name, v.Default, def, ok)
		}
		// env's ParseError names the Go field: it must name one variable.
		if fields[v.field] {
			t.Errorf("two variables in fields named %s", v.field)
		}
		fields[v.field] = true
		if v.Secret {
			if twin, ok := variableNamed[v.Name+"_FILE"]; !ok || twin.FileOf != v.Name {
				t.Errorf("secret %s has no *_FILE twin", v.Name)
			}
		}
		if v.FileOf != "" {
			if _, ok := variableNamed[v.FileOf]; !ok {
				t.Errorf("%s gives no variable", v.Name)
			}
		}
	}
	for _, name := range []string{"ROUTEROS_PASSWORD", "API_TOKEN", "WEBHOOK_URL", "SLACK_WEBHOOK_URL", "METRICS_PUSH_URL"} {
		if !variableNamed[name].Secret {
			t.Errorf("%s is not a secret", name)
		}
	}
	if v := variableNamed["DECODE_WORKERS"]; !v.Beyond {
		t.Errorf("DECODE_WORKERS is not marked beyond the contract")
	}
}

// documented is one variable of a Markdown variable table.
type documented struct {
	Default, Meaning string
}

// variableTable reads the table headed "| variable | default | meaning |"
// of a Markdown file: a row per variable, "`A` / `B`" cells split, and
// "`X_{A,B}`" expanded.
func variableTable(t *testing.T, path string) map[string]documented {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "| variable | default | meaning |\n|---|---|---|\n")
	if !ok {
		t.Fatalf("%s has no variable table", path)
	}
	out := map[string]documented{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := splitCells(strings.Trim(line, "|"))
		if len(cells) != 3 {
			t.Fatalf("%s: a row without 3 cells: %s", path, line)
		}
		var names []string
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			names = append(names, expandBraces(m[1])...)
		}
		defaults := splitOutside(cells[1], '/')
		for i, name := range names {
			d := defaults[0]
			if len(defaults) == len(names) {
				d = defaults[i]
			} else if len(defaults) != 1 {
				t.Fatalf("%s: %d defaults for %d variables: %s", path, len(defaults), len(names), line)
			}
			def := ""
			if m := backticked.FindStringSubmatch(d); m != nil {
				def = m[1]
			}
			if _, dup := out[name]; dup {
				t.Errorf("%s: %s in two rows", path, name)
			}
			out[name] = documented{Default: def, Meaning: cells[2]}
		}
	}
	return out
}

var backticked = regexp.MustCompile("`([^`]*)`")

// splitCells splits a table row at | but not at \|.
func splitCells(row string) []string {
	cells := strings.Split(strings.ReplaceAll(row, `\|`, "\x00"), "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(strings.ReplaceAll(c, "\x00", `\|`))
	}
	return cells
}

// splitOutside splits s at sep outside `code`.
func splitOutside(s string, sep byte) []string {
	var out []string
	start, code := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '`':
			code = !code
		case s[i] == sep && !code:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// expandBraces expands THRESHOLD_{TCP,UDP}_{PPS,MBPS} into its names.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}
	}
	end := open + strings.IndexByte(s[open:], '}')
	var out []string
	for _, alt := range strings.Split(s[open+1:end], ",") {
		out = append(out, expandBraces(s[:open]+alt+s[end+1:])...)
	}
	return out
}

// TestDocumentedVariables holds the README's variable table and the
// contract's to the one list: every contract variable is known, with its
// default; the README lists exactly the list (a secret's *_FILE twin aside,
// which the prose covers), marking what is beyond the contract.
func TestDocumentedVariables(t *testing.T) {
	readme := variableTable(t, filepath.Join("..", "README.md"))
	listed := map[string]bool{}
	for _, v := range variables {
		if v.FileOf != "" && variableNamed[v.FileOf].Secret {
			continue
		}
		listed[v.Name] = true
		row, ok := readme[v.Name]
		switch {
		case !ok:
			t.Errorf("README.md has no row for %s", v.Name)
		case row.Default != v.Default:
			t.Errorf("README.md: %s defaults to %q, the list says %q", v.Name, row.Default, v.Default)
		case v.Beyond != strings.Contains(row.Meaning, "beyond the contract"):
			t.Errorf("README.md: %s is beyond the contract: %v; its row does not say so", v.Name, v.Beyond)
		}
	}
	for name := range readme {
		if !listed[name] {
			t.Errorf("README.md documents %s, which flowshield does not read", name)
		}
	}

	// The contract lives beside the repository, in the workspace.
	path := filepath.Join("..", "..", "shared", "CONTRACT.md")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no contract beside the repository: %v", err)
	}
	contract := variableTable(t, path)
	for name, row := range contract {
		v, ok := variableNamed[name]
		switch {
		case !ok:
			t.Errorf("the contract's %s is not read", name)
		case v.Beyond:
			t.Errorf("%s is in the contract but marked beyond it", name)
		case row.Default != v.Default:
			t.Errorf("the contract's %s defaults to %q, the list says %q", name, row.Default, v.Default)
		}
	}
	for name := range listed {
		if _, ok := contract[name]; !ok && !variableNamed[name].Beyond {
			t.Errorf("%s is neither in the contract nor marked beyond it", name)
		}
	}
}
