package jsmw

// LiveVMs counts the JS VMs the API's Program knows of now (see
// jsvm.Program.Live); zero without JS middleware.
func (s *Set) LiveVMs() int {
	if s == nil {
		return 0
	}
	return s.prog.Live()
}
