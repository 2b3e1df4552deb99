package main

import "github.com/spf13/cobra"

func newTUFClientCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tuf-client",
		Short: "The device's TUF client, as a command line (TUF conformance suite entry point)",
	}
}
