package e2e

import "syscall"

// procAttr makes a started breakwater die with the test binary (a panic or
// -timeout in the tests must not leave gateways running).
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
