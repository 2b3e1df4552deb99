// Command schemagen writes scenarios' JSON Schema (scenario.schema.json)
// from the scenario types. go generate ./scenarios/ runs it in the
// scenarios directory.
package main

import (
	"fmt"
	"os"

	"github.com/fleetsim/fleetsim/scenarios"
)

func main() {
	out, err := scenarios.GenerateSchema(".")
	if err == nil {
		err = os.WriteFile(scenarios.SchemaFile, out, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}
