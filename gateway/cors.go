package gateway

// corsSteps builds the CORS middleware of an API from its CORS section.
func (g *Gateway) corsSteps(def *APIDefinition) ([]step, []string, error) {
	return nil, nil, nil
}
