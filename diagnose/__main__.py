from netdoctor.diagnose.cli import main

main()
