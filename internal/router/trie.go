package router

// node is a trie node: one per distinct path prefix of a host.
type node struct {
	lits   []edge           // literal children, in insertion order
	litMap map[string]*node // the same, once there are many
	param  *node            // {param} child
	routes []int            // templates that end here, by id
	rest   []int            // templates that end here with "/**", by id
}

type edge struct {
	text string
	next *node
}

// maxLinear is the number of literal children searched linearly before a
// node switches to a map.
const maxLinear = 8

func (n *node) child(seg string) *node {
	if n.litMap != nil {
		return n.litMap[seg]
	}
	for i := range n.lits {
		if n.lits[i].text == seg {
			return n.lits[i].next
		}
	}
	return nil
}

func (n *node) addChild(seg string) *node {
	if c := n.child(seg); c != nil {
		return c
	}
	c := &node{}
	n.lits = append(n.lits, edge{seg, c})
	if n.litMap != nil || len(n.lits) > maxLinear {
		if n.litMap == nil {
			n.litMap = make(map[string]*node, len(n.lits))
			for _, e := range n.lits {
				n.litMap[e.text] = e.next
			}
		}
		n.litMap[seg] = c
	}
	return c
}

func (rt *Router) insert(n *node, r *route, id int) {
	for _, s := range r.segs {
		switch s.kind {
		case literal:
			n = n.addChild(s.text)
		case param:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		case wildcard:
			n.rest = append(n.rest, id)
			return
		}
	}
	n.routes = append(n.routes, id)
}
