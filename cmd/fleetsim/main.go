// Command fleetsim simulates and load-tests over-the-air firmware updates of
// microcontroller fleets. See README.md for the subcommands.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra. Commands return it
// when the exit code itself is the answer (for example `image verify`
// answering 1 for an invalid image).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the process exit code. Errors
// are printed as one line on stderr; usage is printed only for usage errors.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "fleetsim:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "fleetsim",
		Short: "Simulate and load-test over-the-air firmware updates of MCU fleets",
		Long: `fleetsim runs fleets of virtual microcontrollers (emulated NOR flash, an
MCUboot-style bootloader, the aktualizr-nano update agent with a TUF client)
against a device gateway, in deterministic virtual time or over real sockets.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(
		newImageCmd(),
		newBootCmd(),
		newTUFClientCmd(),
		newTUFRepoCmd(),
		newPKICmd(),
		newLoadgenCmd(),
		newGatewayCmd(),
		newDeviceCmd(),
		newBundleCmd(),
		newRunCmd(),
		newScenariosCmd(),
	)
	return root
}
