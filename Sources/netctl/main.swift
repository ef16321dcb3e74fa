import BerthCtl

Netctl.main()
