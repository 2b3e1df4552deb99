package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fleetsim/fleetsim/scenarios"
	"github.com/spf13/cobra"
)

func newScenariosCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scenarios",
		Short: "List, show and check scenarios (the built-in library and your own files)",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List the built-in scenarios",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				for _, e := range scenarios.Builtin() {
					fmt.Fprintf(tw, "%s\t%s\n", e.Name, firstSentence(e.Description))
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:   "show NAME",
			Short: "Print a built-in scenario's YAML (a starting point for your own)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				for _, e := range scenarios.Builtin() {
					if e.Name == args[0] {
						_, err := cmd.OutOrStdout().Write(e.Data)
						return err
					}
				}
				return &exitError{2, fmt.Errorf("no built-in scenario %q (built-ins: %s)", args[0], strings.Join(scenarios.BuiltinNames(), ", "))}
			},
		},
		&cobra.Command{
			Use:   "check FILE...",
			Short: "Check scenario files: exit 0 when every one is valid, 2 with file:line: reason otherwise",
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				for _, path := range args {
					if _, err := scenarios.Load(path); err != nil {
						return &exitError{2, err}
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
				}
				return nil
			},
		},
		&cobra.Command{
			Use:   "schema",
			Short: "Print the scenario format's JSON Schema (for editors)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := cmd.OutOrStdout().Write(scenarios.Schema())
				return err
			},
		},
	)
	return cmd
}

// firstSentence is s up to its first full stop, on one line.
func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
