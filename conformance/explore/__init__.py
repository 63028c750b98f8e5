"""Exploration: sequences of segments and application calls nobody wrote,
drawn at random with a bias towards the edges (.sequence), expected as the
reference model allows (.expand), run on real stacks by the ordinary sweep,
their deviations shrunk (.shrink) into case files (.findings), and the
command that does it all (.cli: ``tcpconf explore``)."""
