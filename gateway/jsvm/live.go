package jsvm

// Live counts the VMs the Program knows of now: idle ones and those
// running. Each is a full copy of the compiled template, so a count that
// grows with runs is memory that is never given back; a discarded VM is
// no longer counted.
func (p *Program) Live() int {
	n := 0
	p.vms.Range(func(_, _ any) bool {
		n++
		return true
	})
	return n
}
