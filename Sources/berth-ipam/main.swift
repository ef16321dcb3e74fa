import BerthCNI
import BerthIPAM

CNIPlugin.ipam.main()
