/*
 * skiff's static DSDT (compiled by iasl at build time; src/vmm/acpi.c patches
 * the 64-bit PCI window, which depends on the RAM size, and the checksum).
 * Each expression between two at-signs is filled in before iasl runs, by
 * asl_subst.py, from the numeric #defines of include/platform.h and
 * include/acpi_ged.h (ECAM, the PCI MMIO32 window, COM1, the event device's
 * register and GSI), so the addresses here are those of the rest of skiff.
 */
DefinitionBlock ("dsdt.aml", "DSDT", 2, "SKIFF ", "SKIFFDSD", 1)
{
    /* S5 (soft off): SLP_TYP 5 for the FADT's sleep control register. */
    Name (_S5, Package (0x04) { @ACPI_SLP_TYP_S5@, 0x00, 0x00, 0x00 })

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
                    0x0000, 0x0000, @PCI_ECAM_BUSES - 1@, 0x0000, @PCI_ECAM_BUSES@)
                IO (Decode16, @PORT_PCI_CONFIG_ADDR@, @PORT_PCI_CONFIG_ADDR@, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x1000, 0xFFFF, 0x0000, 0xF000)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0x00000000, @PCI_MMIO32_BASE@, @PCI_MMIO32_BASE + PCI_MMIO32_SIZE - 1@,
                    0x00000000, @PCI_MMIO32_SIZE@)
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
                Memory32Fixed (ReadWrite, @PCI_ECAM_BASE@, @PCI_ECAM_SIZE@)
            })
        }

        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, One)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, @PORT_COM1@, @PORT_COM1@, 0x00, 0x08)
                IRQNoFlags () {@GSI_COM1@}
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
                Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, ) {@GSI_ACPI_GED@}
            })
            OperationRegion (GDST, SystemMemory, @PLATFORM_MMIO_BASE + ACPI_GED_EVENT@, 0x04)
            Field (GDST, DWordAcc, NoLock, WriteAsZeros)
            {
                GDAT, 32
            }
            Method (_EVT, 1, Serialized)
            {
                Local0 = GDAT
                If (Local0 & @ACPI_GED_EV_POWER_BUTTON@)
                {
                    Notify (PWRB, 0x80)
                }
            }
        }
    }
}
