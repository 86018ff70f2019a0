from mill.cli.main import main

main()
