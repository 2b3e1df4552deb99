package main

import "github.com/spf13/cobra"

func newBootCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "boot",
		Short: "Exercise the MCUboot-style bootloader (power-cut sweep)",
	}
}
