/*
 * skiff's static DSDT (compiled by iasl at build time; src/vmm/acpi.c patches
 * the 64-bit PCI window, which depends on the RAM size, and the checksum).
 * Addresses must match include/platform.h: ECAM 0xE0000000 (256 MiB), PCI
 * MMIO32 0xC0000000 (512 MiB), platform MMIO 0xFED00000 (the event device,
 * src/devices/acpi_ged.c), GSI_ACPI_GED 9, COM1 0x3F8 / IRQ 4.
 */
DefinitionBlock ("dsdt.aml", "DSDT", 2, "SKIFF ", "SKIFFDSD", 1)
{
    /* S5 (soft off): SLP_TYP 5 for the FADT's sleep control register. */
    Name (_S5, Package (0x04) { 0x05, 0x00, 0x00, 0x00 })

    Scope (\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, EisaId ("PNP0A03"))
            Name (_SEG, Zero)
            Name (_BBN, Zero)
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x00FF, 0x0000, 0x0100)
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x1000, 0xFFFF, 0x0000, 0xF000)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0x00000000, 0xC0000000, 0xDFFFFFFF, 0x00000000, 0x20000000)
                /* Placeholder, patched at run time: pci_mmio64_base(), 64 GiB. */
                QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0x0000000000000000, 0x5A5A5A5A00000000, 0x5A5A5A5AFFFFFFFF,
                    0x0000000000000000, 0x0000000100000000)
            })
        }

        /* Motherboard resources: the ECAM, so Linux trusts MCFG. */
        Device (MRES)
        {
            Name (_HID, EisaId ("PNP0C02"))
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                Memory32Fixed (ReadWrite, 0xE0000000, 0x10000000)
            })
        }

        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, One)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x03F8, 0x03F8, 0x00, 0x08)
                IRQNoFlags () {4}
            })
        }

        Device (PWRB)
        {
            Name (_HID, EisaId ("PNP0C0C"))
            Name (_UID, Zero)
        }

        /* Generic Event Device (ACPI 6.1 5.6.9): its interrupt runs _EVT,
         * which reads (and so clears) the event bits and notifies. */
        Device (GED0)
        {
            Name (_HID, "ACPI0013")
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, ) {9}
            })
            OperationRegion (GDST, SystemMemory, 0xFED00000, 0x04)
            Field (GDST, DWordAcc, NoLock, WriteAsZeros)
            {
                GDAT, 32
            }
            Method (_EVT, 1, Serialized)
            {
                Local0 = GDAT
                If (Local0 & One)
                {
                    Notify (PWRB, 0x80)
                }
            }
        }
    }
}
