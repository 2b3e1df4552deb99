// Package devicemodel is the virtual MCU: board profiles, the boot ROM that
// runs the bootloader and then the application, the secure element, power and
// reset. It wires flashsim, devicemodel/mcuboot and the agent into one device
// on a platform (virtual or live) and knows nothing of the fleet around it.
package devicemodel
