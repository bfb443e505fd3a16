from netdoctor.diagnose.cli.app import main

main()
